# The boot loader that matches blankslate.disk.boot, and a refusal of the
# combinations that cannot boot from the layout the installer makes:
#   uefi   -> systemd-boot on the ESP (EFI variables written);
#   bios   -> GRUB in the disk's BIOS boot partition (EF02), /boot on vfat;
#   hybrid -> GRUB for both: EF02 for BIOS, the ESP for UEFI as the removable
#             path (EFI/BOOT/BOOTX64.EFI), which needs no EFI variable.
# Scalars are mkDefault (a host may pick its own loader, the assertion checks
# it), grub.enable just above it. The disk is the scalar grub.device, from which nixpkgs'
# grub.nix derives grub.devices: a host that names the disk itself (boot.loader.grub.device,
# common on VPS configurations) replaces ours instead of listing it twice, which grub.nix
# refuses for GRUB without EFI ("You cannot have duplicated devices in mirroredBoots").
{ config, lib, ... }:
let
  cfg = config.blankslate;
  loader = config.boot.loader;
  boot = if cfg.disk == null then null else cfg.disk.boot;
  grubDevices = lib.filter (d: d != "nodev") loader.grub.devices;
  withGrub = boot == "bios" || boot == "hybrid";
in
{
  config = lib.mkIf (cfg.enable && boot != null) {
    boot.loader = lib.mkMerge [
      (lib.mkIf (boot == "uefi") {
        systemd-boot.enable = lib.mkDefault true;
        efi.canTouchEfiVariables = lib.mkDefault true;
      })
      (lib.mkIf withGrub {
        # Above mkDefault: systemd-boot.nix sets grub.enable = mkDefault false when a host
        # keeps systemd-boot on, and the two defaults would clash before the assertion
        # below can say what is wrong. A host's own value still wins.
        grub.enable = lib.mkOverride 900 true;
        systemd-boot.enable = lib.mkDefault false;
        grub.device = lib.mkIf (cfg.disk.device != null) (lib.mkDefault cfg.disk.device);
      })
      (lib.mkIf (boot == "hybrid") {
        grub.efiSupport = lib.mkDefault true;
        grub.efiInstallAsRemovable = lib.mkDefault true;
        efi.canTouchEfiVariables = lib.mkDefault false;
      })
    ];

    assertions = [
      {
        assertion = !(withGrub && loader.systemd-boot.enable);
        message = "blankslate: disk.boot = \"${boot}\" boots through the BIOS, which systemd-boot cannot; leave boot.loader.systemd-boot.enable off (GRUB is set up for you)";
      }
      {
        assertion = !withGrub || (loader.grub.enable && grubDevices != [ ]);
        message = "blankslate: disk.boot = \"${boot}\" needs GRUB installed on the disk: boot.loader.grub.enable and a disk in boot.loader.grub.devices (set blankslate.disk.device, or the devices yourself)";
      }
      {
        assertion = boot != "hybrid" || loader.grub.efiSupport;
        message = "blankslate: disk.boot = \"hybrid\" needs boot.loader.grub.efiSupport, or UEFI firmware finds no boot loader on the ESP";
      }
      {
        # GRUB for BIOS only: grub-install finds no BIOS boot partition on this GPT disk.
        assertion = !(boot == "uefi" && loader.grub.enable && !loader.grub.efiSupport && !loader.systemd-boot.enable);
        message = "blankslate: disk.boot = \"uefi\" has no BIOS boot partition for GRUB: use systemd-boot, or GRUB with boot.loader.grub.efiSupport (or set disk.boot = \"bios\" or \"hybrid\")";
      }
    ];
  };
}
