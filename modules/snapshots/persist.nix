# Snapshots of persistPath: a timer starts blankslate-persist-snapshot, which runs
# ./btrfs-persist-snapshot.bash (a read-only snapshot of the persist subvolume into
# persistSnapshots.subvolume at the top level) or ./zfs-persist-snapshot.bash (`zfs snapshot`
# of the persist dataset), then prunes to the newest `keep`. Both source the rollback's
# ../rollback/kept.bash (naming and pruning), so they travel together in one store directory.
# Off by default: a snapshot keeps what users deleted, and takes space as persistPath changes.
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:
let
  inherit (lib) mkOption types;
  blib = import ../lib.nix { inherit lib; };
  btypes = blib.types;
  cfg = config.blankslate;
  snap = cfg.persistSnapshots;
  plan = cfg._plan.persistSnapshots;
  onZfs = cfg.rollback == "zfs";

  scripts = blib.scriptDir ./.. [
    "rollback/kept.bash"
    "snapshots/btrfs-persist-snapshot.bash"
    "snapshots/zfs-persist-snapshot.bash"
  ];
  device = blib.mainDevice cfg._plan;
  command =
    if onZfs then
      [
        "${scripts}/snapshots/zfs-persist-snapshot.bash"
        plan.persist
        (toString plan.keep)
      ]
    else
      [
        "${scripts}/snapshots/btrfs-persist-snapshot.bash"
        device
        plan.persist
        plan.subvolume
        (toString plan.keep)
      ];
in
{
  options.blankslate.persistSnapshots = {
    interval = mkOption {
      type = types.nullOr types.nonEmptyStr;
      default = null;
      example = "hourly";
      description = ''
        When to snapshot persistPath, as systemd's OnCalendar= takes it ("hourly", "daily",
        "*-*-* 03:00:00"); null (the default) takes none. A snapshot is read-only and keeps
        what was deleted since; `blankslate recover --from-persist` copies out of it and
        `blankslate persist send` writes it to a file for off-site backups.
      '';
    };
    keep = mkOption {
      # the scripts refuse more than six digits
      type = types.ints.between 0 999999;
      default = 24;
      description = "How many snapshots are kept (the newest, by creation); 0 deletes them all and takes none.";
    };
    subvolume = mkOption {
      type = btypes.subvolumeName;
      default = "persist_snapshots";
      description = "btrfs: the subvolume at the top level that holds the snapshots (ZFS names them <dataset>@blankslate-<time>).";
    };
  };

  config = lib.mkIf (cfg.enable && snap.interval != null && plan != null) {
    systemd.services.blankslate-persist-snapshot = {
      description = "blankslate: snapshot persistPath and prune the older snapshots";
      # mount, umount (util-linux); find (findutils); sort, stat, date, sync (coreutils)
      path =
        [
          pkgs.coreutils
          pkgs.util-linux
        ]
        ++ (
          if onZfs then
            [ config.boot.zfs.package ]
          else
            [
              pkgs.btrfs-progs
              pkgs.findutils
            ]
        );
      after = [ "local-fs.target" ];
      # The name rule zfs-persist-snapshot.bash checks the dataset with (rules.json).
      environment = lib.mkIf onZfs blib.zfsRuleEnvironment;
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${pkgs.bash}/bin/bash ${utils.escapeSystemdExecArgs command}";
        # The top level is mounted in the unit's own namespace: a killed run leaves no mount.
        PrivateMounts = true;
      };
    };
    systemd.timers.blankslate-persist-snapshot = {
      description = "blankslate: snapshot persistPath (${snap.interval})";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = snap.interval;
        # A tick missed while the machine was off runs at the next boot.
        Persistent = true;
      };
    };
  };
}
