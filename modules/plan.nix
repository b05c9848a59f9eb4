# The plan: every fact the Python tool needs, computed from the options
# (plan v2, see docs/plan.md) and installed as /etc/blankslate/plan.json.
# The derived layout (partitions, mount table) is computed here once and read
# by filesystems.nix, the rollback units and the Python tool alike; the modules
# read `_plan`, the plan before its checks, so assertions can list every error.
{ config, lib, options, ... }:
let
  cfg = config.blankslate;
  blib = import ./lib.nix { inherit lib; };
  onTmpfs = cfg.rollback == "tmpfs";
  onZfs = cfg.rollback == "zfs";
  # tmpfs keeps btrfs for /nix and the persisted subvolumes, without a root to roll back.
  onBtrfs = cfg.rollback == "btrfs" || (onTmpfs && cfg.disk != null);

  bootMountpoints = blib.bootMountpoints cfg.persistPath;

  # --- partitions: ESP, swap unless its size is zero, the main partition --------------------
  mainPartition =
    if onZfs then
      {
        name = cfg.disk.label;
        type = "bf00";
        size = null;
        format = "zfs";
        label = cfg.zfs.pool;
        device = blib.byPartLabel cfg.disk.label;
      }
    else
      {
        name = cfg.disk.label;
        type = "8300";
        size = null;
        format = "btrfs";
        inherit (cfg.disk) label;
        device = blib.byLabel cfg.disk.label;
      };

  # BIOS boot (GRUB's core image, first as some BIOSes want), then /boot: the ESP, or with
  # boot = "bios" a plain vfat partition GRUB reads.
  partitions = lib.optionals (cfg.disk != null) (
    lib.optional (cfg.disk.boot != "uefi") {
      name = blib.biosPartitionName;
      type = "ef02";
      size = "1MiB";
      format = "none";
      label = null;
      device = blib.byPartLabel blib.biosPartitionName;
    }
    ++ [
      {
        name = if cfg.disk.boot == "bios" then "boot" else "ESP";
        type = if cfg.disk.boot == "bios" then "8300" else "ef00";
        size = cfg.disk.espSize;
        format = "vfat";
        label = blib.espLabel;
        device = blib.byLabel blib.espLabel;
      }
    ]
    ++ lib.optional (!blib.isZeroSize cfg.disk.swapSize) {
      name = "swap";
      type = "8200";
      size = cfg.disk.swapSize;
      format = "swap";
      label = blib.swapLabel;
      device = blib.byLabel blib.swapLabel;
    }
    ++ [ mainPartition ]
  );

  # --- the mount table ------------------------------------------------------------------------
  tmpfsRoot = lib.optional onTmpfs {
    mountPoint = "/";
    # nixpkgs' own default for special filesystems (tasks/filesystems.nix): the type.
    device = "tmpfs";
    fsType = "tmpfs";
    # 755: a tmpfs root defaults to 1777, which sshd's StrictModes and others refuse.
    options = [
      "mode=755"
      "size=${cfg.tmpfs.size}"
    ];
    neededForBoot = true;
  };

  subvolumeMounts = lib.optionals (onBtrfs && cfg.disk != null) (
    map (s: {
      mountPoint = s.mountpoint;
      inherit (mainPartition) device;
      fsType = "btrfs";
      options = [ "subvol=${s.name}" ] ++ s.options;
      inherit (s) neededForBoot;
    }) cfg.btrfs.subvolumes
  );

  # Legacy mountpoints: NixOS mounts the datasets, ZFS does not auto-mount them.
  datasetMounts = lib.optionals onZfs (
    map (d: {
      mountPoint = d.mountpoint;
      device = "${cfg.zfs.pool}/${d.name}";
      fsType = "zfs";
      options = [ ];
      neededForBoot = lib.elem d.mountpoint bootMountpoints;
    }) cfg.zfs.datasets
  );

  espMount = lib.optional (cfg.disk != null) {
    mountPoint = "/boot";
    device = blib.byLabel blib.espLabel;
    fsType = "vfat";
    # What nixos-generate-config writes for an ESP: only root reads the boot loader's files.
    options = [
      "fmask=0077"
      "dmask=0077"
    ];
    neededForBoot = false;
  };

  mounts = blib.sortMounts (tmpfsRoot ++ subvolumeMounts ++ datasetMounts ++ espMount);

  # --- snapshots of persistPath (modules/snapshots/persist.nix) -------------------------------
  snapshots = cfg.persistSnapshots;
  persistSubvolume = lib.findFirst (s: s.mountpoint == cfg.persistPath) null cfg.btrfs.subvolumes;
  persistDataset = lib.findFirst (d: d.mountpoint == cfg.persistPath) null cfg.zfs.datasets;
  persistSnapshots =
    if snapshots.interval == null then
      null
    else if onZfs && persistDataset != null then
      {
        inherit (snapshots) interval keep;
        persist = "${cfg.zfs.pool}/${persistDataset.name}";
        subvolume = null;
      }
    else if onBtrfs && cfg.disk != null && persistSubvolume != null then
      {
        inherit (snapshots) interval keep subvolume;
        persist = persistSubvolume.name;
      }
    else
      null;

  # --- checks that types alone cannot make: each names the option at fault --------------------
  subvolumeNames = map (s: s.name) cfg.btrfs.subvolumes;
  datasetNames = map (d: d.name) cfg.zfs.datasets;
  nested = a: b: a == b || lib.hasPrefix "${a}/" b || lib.hasPrefix "${b}/" a;
  check = ok: message: lib.optional (!ok) "blankslate: ${message}";
  duplicatesIn =
    option: what: values:
    map (v: "blankslate: ${option}: ${what} ${builtins.toJSON v} appears twice") (blib.duplicates values);

  layoutErrors =
    check (cfg.persistPath != "/") "persistPath cannot be / (it is erased at every boot)"
    ++ check (cfg.rollback == "none" || cfg.disk != null) "rollback \"${cfg.rollback}\" needs blankslate.disk"
    ++ lib.optionals (cfg.disk != null) (
      check (!blib.isZeroSize cfg.disk.espSize) "disk.espSize cannot be zero (the ESP holds the boot loader)"
      # GPT names are how disko and /dev/disk/by-partlabel find partitions.
      ++ duplicatesIn "blankslate.disk.label" "partition name" (map (p: p.name) partitions)
    )
    ++ check (!lib.elem "/" (map (d: d.directory) cfg.persistence.directories)) "persistence.directories: \"/\" cannot be persisted whole; persist the subdirectories that hold state"
    ++ lib.concatMap (
      name: check (blib.isUserName name) "users.${builtins.toJSON name}: not a valid user name"
    ) (lib.attrNames cfg.users)
    ++ lib.optionals onBtrfs (
      duplicatesIn "blankslate.btrfs.subvolumes" "mountpoint" (map (s: s.mountpoint) cfg.btrfs.subvolumes)
      ++ duplicatesIn "blankslate.btrfs.subvolumes" "name" subvolumeNames
    )
    ++ lib.optionals (cfg.rollback == "btrfs") (
      let
        inherit (cfg.btrfs) rootSubvolume blankSnapshot;
        old = cfg.btrfs.oldRoots.subvolume;
      in
      check (rootSubvolume != null && blankSnapshot != null) "rollback \"btrfs\" needs btrfs.rootSubvolume and btrfs.blankSnapshot"
      ++ lib.optionals (rootSubvolume != null && blankSnapshot != null) (
        check (lib.elem rootSubvolume subvolumeNames) "btrfs.rootSubvolume \"${rootSubvolume}\" is not one of btrfs.subvolumes"
        ++ check (!nested blankSnapshot rootSubvolume) "btrfs.blankSnapshot \"${blankSnapshot}\" and btrfs.rootSubvolume \"${rootSubvolume}\" are the same or nested; the rollback would replace the root with itself"
        ++ check (!lib.any (nested blankSnapshot) subvolumeNames) "btrfs.blankSnapshot \"${blankSnapshot}\" is, or nests with, one of btrfs.subvolumes"
        ++ check (!lib.any (nested old) (subvolumeNames ++ [ blankSnapshot ])) "btrfs.oldRoots.subvolume \"${old}\" is, or nests with, a subvolume or the blank snapshot"
      )
    )
    ++ lib.optionals onTmpfs (
      check (!lib.any (s: s.mountpoint == "/") cfg.btrfs.subvolumes) "rollback \"tmpfs\" mounts / as tmpfs; remove the btrfs subvolume mounted on /"
    )
    ++ lib.optionals (snapshots.interval != null) (
      check (persistSnapshots != null) "persistSnapshots needs persistPath ${cfg.persistPath} on a btrfs subvolume or a ZFS dataset of its own (one of btrfs.subvolumes or zfs.datasets mounted there)"
      ++ lib.optionals (persistSnapshots != null && !onZfs) (
        check (!lib.any (nested snapshots.subvolume) (
          subvolumeNames
          ++ lib.optionals (cfg.rollback == "btrfs") (
            lib.filter (name: name != null) [
              cfg.btrfs.blankSnapshot
              cfg.btrfs.oldRoots.subvolume
            ]
          )
        )) "persistSnapshots.subvolume \"${snapshots.subvolume}\" is, or nests with, a subvolume, the blank snapshot or the old roots"
      )
    )
    ++ lib.optionals onZfs (
      duplicatesIn "blankslate.zfs.datasets" "mountpoint" (map (d: d.mountpoint) cfg.zfs.datasets)
      ++ duplicatesIn "blankslate.zfs.datasets" "name" datasetNames
      ++ check (lib.any (d: d.name == cfg.zfs.rootDataset && d.mountpoint == "/") cfg.zfs.datasets) "zfs.rootDataset \"${cfg.zfs.rootDataset}\" must be one of zfs.datasets, mounted on /"
    );

  plan = {
    version = 2;
    hostName = config.networking.hostName;
    inherit (cfg) rollback persistPath;

    disk =
      if cfg.disk == null then
        null
      else
        {
          inherit (cfg.disk) device boot;
          inherit partitions;
        };

    inherit mounts;

    btrfs =
      if onBtrfs then
        {
          rootSubvolume = if onTmpfs then null else cfg.btrfs.rootSubvolume;
          blankSnapshot = if onTmpfs then null else cfg.btrfs.blankSnapshot;
          oldRoots =
            if onTmpfs then
              null
            else
              {
                inherit (cfg.btrfs.oldRoots)
                  subvolume
                  keepDays
                  keepNewest
                  keepMax
                  ;
              };
          subvolumes = subvolumeNames;
        }
      else
        null;

    zfs =
      if onZfs then
        {
          inherit (cfg.zfs) pool rootDataset blankSnapshot;
          datasets = datasetNames;
        }
      else
        null;

    tmpfs = if onTmpfs then { inherit (cfg.tmpfs) size; } else null;

    inherit persistSnapshots;

    # Everything environment.persistence (and preservation.preserveAt, when that module is
    # imported) holds, whoever declared it (modules/persisted.nix).
    persistence = import ./persisted.nix { inherit lib; } {
      persistence = cfg._persistence;
      preservation = if options ? preservation then config.preservation else null;
      inherit (config.users) users;
      homeManagerUsers = if options ? home-manager.users then config.home-manager.users else { };
    };

    # attrNames is sorted, so users come out sorted by name.
    users = map (name: {
      inherit name;
      hashedPasswordFile = "${cfg.persistPath}/passwords/${name}";
      # Public keys (no secret): install, extra-files and doctor refuse a lockout with them.
      inherit (cfg.users.${name}) authorizedKeys;
    }) (lib.attrNames cfg.users);

    sshHostKeys = [
      "${cfg.persistPath}/etc/ssh/ssh_host_ed25519_key"
    ]
    ++ lib.optional cfg.ssh.rsaHostKey "${cfg.persistPath}/etc/ssh/ssh_host_rsa_key";

    audit = { inherit (cfg.audit) ignore; };

    # The layout as disko's `disko.devices` (./disko/devices.nix, the one renderer), with the
    # disk as configured (null when disk.device is); `blankslate disko` prints it as Nix text
    # with --disk in its place, blankslate.disko.enable sets it. null without a disk.
    disko =
      if cfg.disk == null then
        null
      else
        import ./disko/devices.nix { inherit lib; } plan cfg.disk.device;

    # Services whose state systemd keeps in directories it makes (diff --suggest groups by them).
    units = import ./plan-units.nix { inherit lib blib; } config.systemd.services;
  };
in
{
  options.blankslate = {
    plan = lib.mkOption {
      type = lib.types.attrs;
      readOnly = true;
      internal = true;
      description = "Plan v2 handed to the blankslate tool (computed, do not set). Evaluating it fails on a layout that cannot work.";
    };
    _plan = lib.mkOption {
      type = lib.types.attrs;
      readOnly = true;
      internal = true;
      description = "The plan before its checks; the modules read it, so assertions can report every error at once.";
    };
    _layoutErrors = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      readOnly = true;
      internal = true;
      description = "What is wrong with the layout; empty when it can work.";
    };
  };

  config = {
    blankslate._layoutErrors = layoutErrors;
    blankslate._plan = plan;
    blankslate.plan =
      if layoutErrors == [ ] then plan else throw (lib.concatStringsSep "\n" layoutErrors);

    environment.etc = lib.mkIf cfg.enable (
      {
        "blankslate/plan.json".text = builtins.toJSON cfg.plan;
      }
      // lib.optionalAttrs (cfg.audit.ignoreFile != null) {
        "blankslate/audit.yaml".source = cfg.audit.ignoreFile;
      }
    );
  };
}
