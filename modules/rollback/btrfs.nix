# rollback "btrfs": in the initrd, before / is mounted, move the root subvolume
# to old_roots/<UTC time> and snapshot a fresh root from the blank snapshot.
# The work is done by ./btrfs-rollback.bash (contract in docs/internals.md), the same
# file the integration tests run against a real filesystem.
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
  device = blib.mainDevice cfg._plan;
  # dev-disk-by\x2dlabel-nixos.device: the device itself, not
  # initrd-root-device.target, which may be reached before it appears (systemd#24904).
  deviceUnit = "${utils.escapeSystemdPath device}.device";
  cryptUnits = lib.optional (
    cfg.btrfs.cryptsetupName != null
  ) "systemd-cryptsetup@${utils.escapeSystemdPath cfg.btrfs.cryptsetupName}.service";

  # The script and the library it sources, side by side in one store directory.
  scripts = blib.scriptDir ./. [
    "btrfs-rollback.bash"
    "kept.bash"
    "record.bash"
  ];
  script = "${scripts}/btrfs-rollback.bash";

  # The positional arguments; the initrd adds the budget (and the quota), stage 2 --prune-only.
  args = [
    device
    cfg.btrfs.rootSubvolume
    cfg.btrfs.blankSnapshot
    cfg.btrfs.oldRoots.subvolume
    (toString cfg.btrfs.oldRoots.keepDays)
    (toString cfg.btrfs.oldRoots.keepNewest)
  ]
  # KEEP_MAX, the 7th: absent when keepMax is null
  ++ lib.optional (cfg.btrfs.oldRoots.keepMax != null) (toString cfg.btrfs.oldRoots.keepMax);
  # The store path of bash, not the initrd's /bin/bash: /bin holds bash only while initrdBin
  # has it (nixpkgs' systemd/initrd.nix adds bashInteractive there, which an initrd without
  # bash drops); the path is in storePaths below, so the unit never loses its shell.
  bash = "${pkgs.bash}/bin/bash";
  # With the quota, both runs also start a quota rescan when btrfs's quota data is inconsistent.
  quotaArgs = lib.optionals (cfg.btrfs.rootQuota != null) [
    "--root-quota"
    cfg.btrfs.rootQuota
  ];
  initrdArgs = [
    "--prune-budget"
    (toString cfg.btrfs.oldRoots.pruneBudget)
  ]
  ++ quotaArgs
  ++ args;
in
{
  # Conditions on boot.initrd.systemd.enable sit on the leaves they guard, so
  # they never depend on the attribute set they define.
  config = lib.mkIf (cfg.enable && cfg.rollback == "btrfs") {
    boot.initrd = {
      systemd.enable = lib.mkDefault true;
      supportedFilesystems = [ "btrfs" ];

      # The unit runs with the initrd's PATH, /bin:/sbin (systemd/initrd.nix):
      # bash, coreutils, mount and umount are there already, btrfs-progs comes
      # with btrfs in supportedFilesystems; find is ours to add. No `path`:
      # it would replace /bin with store paths the initrd may not hold.
      systemd.initrdBin = [
        pkgs.btrfs-progs
        pkgs.findutils
      ];
      systemd.services.blankslate-rollback = {
        description = "blankslate: reset / to the blank btrfs snapshot";
        wantedBy = [ "initrd.target" ];
        requires = [ deviceUnit ] ++ cryptUnits;
        # local-fs-pre.target: a hibernation resume has been attempted by then.
        after = [
          deviceUnit
          "local-fs-pre.target"
        ]
        ++ cryptUnits;
        before = [ "sysroot.mount" ];
        unitConfig.DefaultDependencies = "no";
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "${bash} ${utils.escapeSystemdExecArgs ([ script ] ++ initrdArgs)}";
        };
      };
      # The scripts themselves must be in the initrd, not only the unit that names them, and
      # so must the bash that runs them.
      systemd.storePaths = [
        "${scripts}"
        bash
      ];

      # Scripted initrd: after the resume attempt, never postDeviceCommands
      # (a resumed image would find its root replaced, impermanence#250).
      extraUtilsCommands = lib.mkIf (!systemdInitrd) ''
        copy_bin_and_libs ${pkgs.bash}/bin/bash
        copy_bin_and_libs ${pkgs.findutils}/bin/find
      '';
      postResumeCommands = lib.mkIf (!systemdInitrd) (
        lib.mkAfter (
          blib.inlineBashWith [ ./kept.bash ./record.bash ] ./btrfs-rollback.bash initrdArgs
        )
      );
    };

    # What the initrd's time budget left: the same script and rules, without the reset, once
    # the clock is set (time-sync.target) and at the lowest CPU and I/O priority. Type exec,
    # not oneshot: multi-user.target (which orders itself after what it wants) and the end
    # of the boot do not wait for it.
    systemd.services.blankslate-prune-old-roots = {
      description = "blankslate: delete the expired old roots the boot left";
      wantedBy = [ "multi-user.target" ];
      after = [
        "local-fs.target"
        "time-sync.target"
      ];
      # mount, umount (util-linux); find (findutils); timeout, sort, stat, date (coreutils)
      path = [
        pkgs.coreutils
        pkgs.util-linux
        pkgs.btrfs-progs
        pkgs.findutils
      ];
      serviceConfig = {
        Type = "exec";
        ExecStart = "${bash} ${
          utils.escapeSystemdExecArgs ([
            script
            "--prune-only"
          ]
          ++ quotaArgs
          ++ args)
        }";
        Nice = 19;
        IOSchedulingClass = "idle";
        # The top level is mounted in the unit's own namespace: a killed run leaves no mount.
        PrivateMounts = true;
      };
    };
  };
}
