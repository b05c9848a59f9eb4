# rollback "zfs": in the initrd, once the pool is imported and before / is
# mounted, roll the root dataset back to its blank snapshot (./zfs-rollback.bash).
{
  config,
  lib,
  pkgs,
  utils,
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
  # The script and the boot record's library it sources, side by side in one store directory.
  scripts = blib.scriptDir ./. [
    "zfs-rollback.bash"
    "record.bash"
  ];
  # The store path of bash, not the initrd's /bin/bash (see ./btrfs.nix).
  bash = "${pkgs.bash}/bin/bash";
in
{
  # Conditions on boot.initrd.systemd.enable sit on the leaves they guard.
  config = lib.mkIf (cfg.enable && cfg.rollback == "zfs") {
    boot.supportedFilesystems = [ "zfs" ];
    # by-id is empty for virtio disks without a serial (nixpkgs#156897); every GPT
    # partition has a PARTUUID link.
    boot.zfs.devNodes = lib.mkDefault "/dev/disk/by-partuuid";
    # The cache lets the pool import by its known devices after a reset.
    blankslate.persistence.files = [ "/etc/zfs/zpool.cache" ];

    boot.initrd = {
      systemd.enable = lib.mkDefault true;
      supportedFilesystems = [ "zfs" ];

      # The unit runs with the initrd's PATH, /bin:/sbin (systemd/initrd.nix), where
      # nixpkgs' zfs module puts zfs and zpool (extraBin). No `path`: it would
      # replace /bin with store paths the initrd may not hold.
      systemd.services.blankslate-rollback = {
        description = "blankslate: roll / back to the blank ZFS snapshot";
        wantedBy = [ "initrd.target" ];
        requires = [ importUnit ];
        after = [ importUnit ];
        before = [ "sysroot.mount" ];
        unitConfig.DefaultDependencies = "no";
        # The name rules the script checks DATASET and SNAPSHOT with (rules.json).
        environment = blib.zfsRuleEnvironment;
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "${bash} ${utils.escapeSystemdExecArgs ([ "${scripts}/zfs-rollback.bash" ] ++ args)}";
        };
      };
      # The scripts themselves must be in the initrd, not only the unit that names them, and
      # so must the bash that runs them.
      systemd.storePaths = [
        "${scripts}"
        bash
      ];

      # Scripted initrd: the ZFS module imports the pool in postResumeCommands; run after it.
      extraUtilsCommands = lib.mkIf (!systemdInitrd) ''
        copy_bin_and_libs ${pkgs.bash}/bin/bash
      '';
      postResumeCommands = lib.mkIf (!systemdInitrd) (
        lib.mkAfter (
          blib.shellAssignments blib.zfsRuleEnvironment
          + blib.inlineBashWith [ ./record.bash ] ./zfs-rollback.bash args
        )
      );
    };
  };
}
