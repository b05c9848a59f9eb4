# Checks that would otherwise surface as an unbootable or state-losing system.
{ config, lib, ... }:
let
  cfg = config.blankslate;
  blib = import ./lib.nix { inherit lib; };
  fileSystems = config.fileSystems;
  persistFs = blib.mountpointOf (blib.mountpointsOf fileSystems) cfg.persistPath;
  persistFsNeededForBoot =
    persistFs != null
    && persistFs != "/"
    && ((blib.fileSystemAt fileSystems persistFs).neededForBoot or false);
  platformMounted = cfg.rollback == "none" && cfg.platform.mountsPersistPath;
  persistedDirs = map (d: d.directory) cfg.plan.persistence.directories;
in
{
  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.rollback != "btrfs" || cfg.btrfs.blankSnapshot != cfg.btrfs.rootSubvolume;
        message = "blankslate: btrfs.blankSnapshot and btrfs.rootSubvolume are both \"${toString cfg.btrfs.rootSubvolume}\"; the rollback would replace the root with itself.";
      }
      {
        assertion =
          cfg.rollback != "btrfs" || (cfg.btrfs.rootSubvolume != null && cfg.btrfs.blankSnapshot != null);
        message = "blankslate: rollback \"btrfs\" needs btrfs.rootSubvolume and btrfs.blankSnapshot.";
      }
      {
        assertion = cfg.rollback != "btrfs" || cfg.disk != null;
        message = "blankslate: rollback \"btrfs\" needs blankslate.disk (its label names the btrfs filesystem).";
      }
      {
        assertion = cfg.rollback != "tmpfs" || !(lib.any (s: s.mountpoint == "/") cfg.btrfs.subvolumes);
        message = "blankslate: rollback \"tmpfs\" mounts / as tmpfs; remove the btrfs subvolume mounted on /.";
      }
      {
        assertion = cfg.rollback != "zfs" || (config.networking.hostId or null) != null;
        message = "blankslate: rollback \"zfs\" needs networking.hostId (8 hex digits, e.g. from `head -c4 /dev/urandom | od -A none -t x4`).";
      }
      {
        assertion = !(lib.elem "/" persistedDirs);
        message = "blankslate: \"/\" is among the persisted directories; persist the subdirectories that hold state instead.";
      }
      {
        assertion = platformMounted || persistFsNeededForBoot;
        message = "blankslate: persistPath ${cfg.persistPath} must be on its own filesystem with neededForBoot = true (found: ${
          if persistFs == null then "no filesystem" else persistFs
        }); it is read in the initrd and / does not survive a reboot.";
      }
    ];
  };
}
