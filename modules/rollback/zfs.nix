# rollback "zfs": in the initrd, once the pool is imported and before / is
# mounted, roll the root dataset back to its blank snapshot (./zfs-rollback.bash).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.blankslate;
  systemdInitrd = config.boot.initrd.systemd.enable;
  blib = import ../lib.nix { inherit lib; };
  importUnit = "zfs-import-${cfg.zfs.pool}.service";
  args = [
    "${cfg.zfs.pool}/${cfg.zfs.rootDataset}"
    cfg.zfs.blankSnapshot
  ];
in
{
  # Conditions on boot.initrd.systemd.enable sit on the leaves they guard.
  config = lib.mkIf (cfg.enable && cfg.rollback == "zfs") {
    boot.supportedFilesystems = [ "zfs" ];
    # The cache lets the pool import by its known devices after a reset.
    blankslate.persistence.files = [ "/etc/zfs/zpool.cache" ];

    boot.initrd = {
      systemd.enable = lib.mkDefault true;
      supportedFilesystems = [ "zfs" ];

      # Only read when systemd runs the initrd.
      systemd.services.blankslate-rollback = {
        description = "blankslate: roll / back to the blank ZFS snapshot";
        wantedBy = [ "initrd.target" ];
        requires = [ importUnit ];
        after = [ importUnit ];
        before = [ "sysroot.mount" ];
        unitConfig.DefaultDependencies = "no";
        serviceConfig.Type = "oneshot";
        path = [
          pkgs.bash
          config.boot.zfs.package
        ];
        script = "bash ${./zfs-rollback.bash} ${lib.escapeShellArgs args}";
      };
      # The script file itself must be in the initrd, not only the unit that names it.
      systemd.storePaths = [ "${./zfs-rollback.bash}" ];

      # Scripted initrd: the ZFS module imports the pool in postResumeCommands; run after it.
      extraUtilsCommands = lib.mkIf (!systemdInitrd) ''
        copy_bin_and_libs ${pkgs.bash}/bin/bash
      '';
      postResumeCommands = lib.mkIf (!systemdInitrd) (
        lib.mkAfter (blib.inlineBash ./zfs-rollback.bash args)
      );
    };
  };
}
