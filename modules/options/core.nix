# Top-level blankslate options: what is reset, where state lives, the disk.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  btypes = (import ../lib.nix { inherit lib; }).types;
in
{
  options.blankslate = {
    enable = lib.mkEnableOption "an impermanent root: / is reset at every boot, state lives in persistPath";

    rollback = mkOption {
      type = types.enum [
        "btrfs"
        "zfs"
        "tmpfs"
        "none"
      ];
      default = "btrfs";
      description = ''
        How / is emptied at boot: "btrfs" and "zfs" roll the root back to a blank
        snapshot in the initrd, "tmpfs" mounts / as tmpfs, "none" leaves it to
        the platform (for example vpsFree.cz's impermanence feature).
      '';
    };

    persistPath = mkOption {
      type = btypes.absolutePath;
      default = "/persist";
      description = "Mountpoint of the persistent storage; it must be mounted in the initrd.";
    };

    disk = mkOption {
      description = "The disk layout the installer creates; null when the platform owns the disk.";
      default = null;
      type = types.nullOr (
        types.submodule {
          options = {
            device = mkOption {
              type = types.nullOr btypes.absolutePath;
              default = null;
              example = "/dev/vda";
              description = "Whole disk to partition; null: the installer asks for --disk or --image.";
            };
            boot = mkOption {
              type = types.enum [
                "uefi"
                "bios"
                "hybrid"
              ];
              default = "uefi";
              description = ''
                How the machine boots. "uefi": an ESP and systemd-boot. "bios" (SeaBIOS, as on
                many VPSes): a 1 MiB BIOS boot partition (EF02) and GRUB on the disk, /boot on
                a vfat partition. "hybrid": both the EF02 partition and an ESP, GRUB for both
                (installed as removable, so no EFI variable is needed).
              '';
            };
            espSize = mkOption {
              type = btypes.size;
              default = "1GiB";
              description = "Size of the /boot partition (label BOOT): the EFI system partition, except with boot = \"bios\".";
            };
            swapSize = mkOption {
              type = btypes.size;
              default = "8GiB";
              description = ''Size of the swap partition (label swap); zero ("0", "0G") for none.'';
            };
            label = mkOption {
              type = btypes.label;
              default = "nixos";
              description = "Label of the main partition's filesystem (btrfs), or the pool's name (zfs).";
            };
          };
        }
      );
    };

    tmpfs.size = mkOption {
      type = btypes.tmpfsSize;
      default = "2G";
      description = ''Size of the tmpfs root when rollback is "tmpfs".'';
    };

    audit.ignore = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Paths `blankslate diff` does not report.";
    };

    audit.ignoreFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = ''
        The host's `blankslate ignore` file (hosts/<name>/audit.yaml), installed as
        /etc/blankslate/audit.yaml so `blankslate diff` on the server knows its rules.
      '';
    };

    deployment.targetHost = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "SSH target used by the colmena hive; null: the host's name.";
    };
  };
}
