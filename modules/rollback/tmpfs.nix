# rollback "tmpfs": / is a tmpfs, empty at every boot by construction. Its
# fileSystems entry comes from the plan's mount table (filesystems.nix); /nix
# and persistPath come from the btrfs subvolumes there, or from hardware.nix.
{ config, lib, ... }:
let
  cfg = config.blankslate;
in
{
  config = lib.mkIf (cfg.enable && cfg.rollback == "tmpfs") {
    boot.initrd.systemd.enable = lib.mkDefault true;
    boot.initrd.supportedFilesystems = lib.mkIf (cfg.disk != null) [ "btrfs" ];
  };
}
