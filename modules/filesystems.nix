# fileSystems and swapDevices, derived from the same options as the plan, by label.
{ config, lib, ... }:
let
  inherit (lib) mkDefault mkIf mkMerge;
  cfg = config.blankslate;
  inherit (cfg) plan;
  blib = import ./lib.nix { inherit lib; };

  # A missing disk is reported by an assertion; this keeps evaluation going until then.
  label = if cfg.disk != null then cfg.disk.label else "nixos";

  bootMountpoints = [
    "/"
    "/nix"
    cfg.persistPath
    "/var/log"
  ];

  mount = mountpoint: value: lib.nameValuePair mountpoint (lib.mapAttrs (_: mkDefault) value);
in
{
  config = mkIf cfg.enable (mkMerge [
    (mkIf (cfg.disk != null) {
      fileSystems = lib.listToAttrs [
        (mount "/boot" {
          device = blib.byLabel "BOOT";
          fsType = "vfat";
          options = [ "umask=0077" ];
        })
      ];
      swapDevices = mkIf (cfg.disk.swapSize != "0") (mkDefault [ { device = blib.byLabel "swap"; } ]);
    })

    (mkIf (plan.btrfs != null) {
      fileSystems = lib.listToAttrs (
        map (
          s:
          mount s.mountpoint {
            device = blib.byLabel label;
            fsType = "btrfs";
            options = [ "subvol=${s.name}" ] ++ s.options;
            inherit (s) neededForBoot;
          }
        ) plan.btrfs.subvolumes
      );
    })

    # Legacy mountpoints: NixOS mounts the datasets, ZFS does not auto-mount them.
    (mkIf (plan.zfs != null) {
      fileSystems = lib.listToAttrs (
        map (
          d:
          mount d.mountpoint {
            device = "${plan.zfs.pool}/${d.name}";
            fsType = "zfs";
            neededForBoot = lib.elem d.mountpoint bootMountpoints;
          }
        ) plan.zfs.datasets
      );
    })
  ]);
}
