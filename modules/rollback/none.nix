# rollback "none": the platform empties / (e.g. vpsFree.cz's impermanence
# feature) and owns /, /nix and usually persistPath. Nothing is mounted or
# rolled back here; persistence, hardening and the plan still apply. Where an
# initrd exists, it records `skipped` in the boot record (./record-root.bash);
# without one (a container) no record is made, which the reader takes as skipped.
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:
let
  cfg = config.blankslate;
  blib = import ../lib.nix { inherit lib; };
  declared = blib.fileSystemAt config.fileSystems cfg.persistPath != null;
  record = import ./record.nix {
    inherit
      config
      lib
      pkgs
      utils
      ;
    kind = "none";
    description = "blankslate: record that the platform resets /";
  };
in
{
  options.blankslate.platform.mountsPersistPath = lib.mkOption {
    type = lib.types.bool;
    default = false;
    description = ''
      With rollback "none": the platform mounts persistPath itself, so no
      fileSystems entry declares it.
    '';
  };

  config = lib.mkIf (cfg.enable && cfg.rollback == "none") (
    lib.mkMerge [
      record
      {
        assertions = [
          {
            assertion = declared || cfg.platform.mountsPersistPath;
            message = "blankslate: with rollback \"none\", declare fileSystems.\"${cfg.persistPath}\" or set blankslate.platform.mountsPersistPath = true if the platform mounts it.";
          }
        ];
      }
    ]
  );
}
