# Options of the btrfs layout (rollback "btrfs", and "tmpfs" on a btrfs disk).
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  blib = import ../lib.nix { inherit lib; };
  btypes = blib.types;
  cfg = config.blankslate;
  bootMountpoints = blib.bootMountpoints cfg.persistPath;

  subvolume =
    { config, ... }:
    {
      options = {
        name = mkOption {
          type = btypes.subvolumeName;
          description = "Subvolume name, relative to the filesystem's top level.";
        };
        mountpoint = mkOption { type = btypes.absolutePath; };
        options = mkOption {
          type = types.listOf types.str;
          default = [
            "compress=zstd"
            "noatime"
          ];
          description = "Mount options added after subvol=<name>.";
        };
        neededForBoot = mkOption {
          type = types.bool;
          default = lib.elem config.mountpoint bootMountpoints;
          defaultText = lib.literalExpression ''elem mountpoint [ "/" "/nix" persistPath "/var/log" "/home" ]'';
        };
      };
    };

  standardLayout =
    lib.optional (cfg.rollback == "btrfs") {
      name = "root";
      mountpoint = "/";
    }
    ++ [
      {
        name = "nix";
        mountpoint = "/nix";
      }
      {
        name = "persist";
        mountpoint = cfg.persistPath;
      }
      {
        name = "log";
        mountpoint = "/var/log";
      }
      {
        name = "home";
        mountpoint = "/home";
      }
    ];
in
{
  options.blankslate.btrfs = {
    rootSubvolume = mkOption {
      type = types.nullOr btypes.subvolumeName;
      default = "root";
      description = "Subvolume mounted on / and replaced at every boot.";
    };
    blankSnapshot = mkOption {
      type = types.nullOr btypes.subvolumeName;
      default = "root-blank";
      description = "Read-only snapshot of the empty root, taken at install time.";
    };
    oldRoots = {
      subvolume = mkOption {
        type = btypes.subvolumeName;
        default = "old_roots";
        description = "Where previous roots are kept, named by the UTC time of the rollback.";
      };
      keepDays = mkOption {
        # btrfs-rollback.bash refuses more than six digits.
        type = types.ints.between 0 999999;
        default = 30;
        description = "Old roots older than this are deleted; 0 deletes them at once.";
      };
      keepNewest = mkOption {
        type = types.ints.between 0 999999;
        default = 3;
        description = "The newest old roots (by creation time) kept whatever their age or the clock says.";
      };
      keepMax = mkOption {
        # btrfs-rollback.bash refuses 0 and more than six digits.
        type = types.nullOr (types.ints.between 1 999999);
        default = 30;
        example = 10;
        description = ''
          At most this many old roots are kept: beyond it, the oldest by creation (btrfs
          subvolume ID) are deleted whatever keepDays, keepNewest or the clock say, at
          boot and again by blankslate-prune-old-roots.service. This bounds the disk on a
          machine without a hardware clock, whose initrd believes it is 1970: keepDays
          then prunes nothing. 30 keeps a month of daily boots; null: no bound.
        '';
      };
      pruneBudget = mkOption {
        # btrfs-rollback.bash refuses more than six digits.
        type = types.ints.between 0 999999;
        default = 5;
        description = ''
          Seconds the initrd may spend deleting expired old roots (0: none); what is left,
          however many subvolumes a user nested in them, is deleted after the boot by
          blankslate-prune-old-roots.service, with the same keepDays, keepNewest and keepMax
          rules.
          A full filesystem is not bound by it: the reset deletes what it must.
        '';
      };
    };
    rootQuota = mkOption {
      type = types.nullOr (types.strMatching "[1-9][0-9]{0,15}[KMGT]?");
      default = null;
      example = "20G";
      description = ''
        A btrfs quota on the root subvolume, set at every boot on the fresh root, so that
        what users write to / (/tmp included) cannot fill the filesystem that holds
        persistPath and /nix. Enables btrfs quotas if they are off (simple quotas with
        kernel and btrfs-progs 6.7 or later: then subvolumes users create inside / count
        too; with full quotas they escape it). Quotas slow extent processing, hence off by
        default.
      '';
    };
    cryptsetupName = mkOption {
      type = types.nullOr btypes.label;
      default = null;
      example = "cryptroot";
      description = "LUKS mapping the btrfs device sits on; the rollback waits for systemd-cryptsetup@<name>.";
    };
    subvolumes = mkOption {
      type = types.listOf (types.submodule subvolume);
      default = standardLayout;
      defaultText = lib.literalMD "root (btrfs only), nix, persist, log, home";
      description = "Subvolumes, in creation order, with their mountpoints.";
    };
  };
}
