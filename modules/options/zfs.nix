# Options of the ZFS layout (rollback "zfs"). Dataset names are relative to the pool.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  btypes = (import ../lib.nix { inherit lib; }).types;
  cfg = config.blankslate;
in
{
  options.blankslate.zfs = {
    pool = mkOption {
      type = btypes.poolName;
      default = if cfg.disk != null then cfg.disk.label else "rpool";
      defaultText = lib.literalExpression ''if disk != null then disk.label else "rpool"'';
    };
    rootDataset = mkOption {
      type = btypes.datasetName;
      default = "root";
      description = "Dataset mounted on /, rolled back at every boot.";
    };
    blankSnapshot = mkOption {
      type = btypes.snapshotName;
      default = "blank";
      description = "Snapshot of the empty root dataset: <pool>/<rootDataset>@<blankSnapshot>.";
    };
    datasets = mkOption {
      description = "Datasets with legacy mountpoints, mounted through fileSystems.";
      default = [
        {
          name = cfg.zfs.rootDataset;
          mountpoint = "/";
        }
        {
          name = "nix";
          mountpoint = "/nix";
        }
        {
          name = "persist";
          mountpoint = cfg.persistPath;
        }
      ];
      defaultText = lib.literalMD "rootDataset on /, nix, persist";
      type = types.listOf (
        types.submodule {
          options = {
            name = mkOption { type = btypes.datasetName; };
            mountpoint = mkOption { type = btypes.absolutePath; };
          };
        }
      );
    };
  };
}
