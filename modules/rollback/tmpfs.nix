# rollback "tmpfs": / is a tmpfs, empty at every boot by construction. /nix and
# persistPath come from the btrfs subvolumes (filesystems.nix) or hardware.nix.
{ config, lib, ... }:
let
  cfg = config.blankslate;
in
{
  config = lib.mkIf (cfg.enable && cfg.rollback == "tmpfs") {
    boot.initrd.systemd.enable = lib.mkDefault true;
    boot.initrd.supportedFilesystems = lib.mkIf (cfg.disk != null) [ "btrfs" ];
    fileSystems."/" = lib.mapAttrs (_: lib.mkDefault) {
      device = "none";
      fsType = "tmpfs";
      # 755: a tmpfs root defaults to 1777, which sshd's StrictModes and others refuse.
      options = [
        "mode=755"
        "size=${cfg.tmpfs.size}"
      ];
      neededForBoot = true;
    };
  };
}
