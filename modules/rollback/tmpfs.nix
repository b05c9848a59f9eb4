# rollback "tmpfs": / is a tmpfs, empty at every boot by construction. Its
# fileSystems entry comes from the plan's mount table (filesystems.nix); /nix
# and persistPath come from the btrfs subvolumes there, or from hardware.nix.
# The initrd records in the boot record that / is indeed a tmpfs (./record-root.bash).
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:
let
  cfg = config.blankslate;
  record = import ./record.nix {
    inherit
      config
      lib
      pkgs
      utils
      ;
    kind = "tmpfs";
    description = "blankslate: record that / is a fresh tmpfs";
  };
in
{
  config = lib.mkIf (cfg.enable && cfg.rollback == "tmpfs") (
    lib.mkMerge [
      {
        boot.initrd.systemd.enable = lib.mkDefault true;
        boot.initrd.supportedFilesystems = lib.mkIf (cfg.disk != null) [ "btrfs" ];
      }
      record
    ]
  );
}
