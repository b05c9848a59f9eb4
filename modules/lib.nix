# Pure helpers for the blankslate modules. No config, no pkgs: each
# function maps its input to its output as in the comment above it.
# The name, size, mode and account patterns are ../scripts/blankslate/rules.json,
# the file `blankslate plan` (scripts/blankslate/rules.py) reads too;
# tests/nix/test_rules.py checks that Nix, Python and bash accept the same strings.
{ lib }:
let
  inherit (lib)
    any
    foldl'
    hasPrefix
    splitString
    stringLength
    ;
in
rec {
  # "nixos" -> "/dev/disk/by-label/nixos"
  byLabel = label: "/dev/disk/by-label/${label}";

  # "rpool" -> "/dev/disk/by-partlabel/rpool"
  byPartLabel = name: "/dev/disk/by-partlabel/${name}";

  # "/persist" -> [ "/" "/nix" "/persist" "/var/log" "/home" ]: what must be mounted in the initrd.
  # /home too: impermanence asserts that the filesystem under a persisted home path is
  # neededForBoot, and NixOS creates a new user's home in the activation script, before
  # stage 2 mounts the rest (nixpkgs#6481), so a later /home would hide it.
  bootMountpoints = persistPath: [
    "/"
    "/nix"
    persistPath
    "/var/log"
    "/home"
  ];

  # Filesystem labels of the ESP and the swap partition; the main one is disk.label.
  espLabel = "BOOT";
  swapLabel = "swap";

  # GPT name of the BIOS boot partition (EF02, no filesystem: GRUB's core image).
  biosPartitionName = "bios";

  # { size = "[0-9]+..."; label = "..."; ... }: each pattern takes a whole string (POSIX ERE).
  rules = lib.filterAttrs (name: _: !hasPrefix "_" name) (
    builtins.fromJSON (builtins.readFile ../scripts/blankslate/rules.json)
  );

  # "zfsPool" "rpool" -> true ; "zfsPool" "_tank" -> false
  follows = rule: s: builtins.match rules.${rule} s != null;

  # "8GiB" -> true ; "512M" -> true ; "0" -> true ; "8 gigs" -> false
  isSize = follows "size";

  # "0" -> true ; "0GiB" -> true ; "8GiB" -> false
  isZeroSize = s: isSize s && builtins.match "0+[^0-9]*" s != null;

  # "/var/lib" -> true ; "/" -> true ; "/a/../b" "/a/" "a" "/a//b" "/a/." -> false
  isNormalPath = follows "normalPath";

  # "root" -> true ; "safe/persist" -> true ; "/root" "a/../b" "a b" ".." -> false
  # (no component may start with '.', so '.' and '..' never pass)
  isRelativeName = follows "subvolumeName";

  # One path component for a label: "nixos" -> true ; "a/b" -> false
  isLabel = follows "label";

  # A ZFS pool begins with a letter (OpenZFS's pool_namecheck): "rpool" -> true ; "_tank" -> false
  isPoolName = follows "zfsPool";

  # A ZFS dataset relative to the pool: "local/root" -> true ; "a/.x" "a/-x" -> false
  isDatasetName = follows "zfsDataset";

  # The part after '@': "blank" -> true ; "a/b" -> false
  isSnapshotName = follows "zfsSnapshot";

  # "root" -> true ; "Root" "1x" -> false (what `blankslate plan` takes as users[].name)
  isUserName = follows "userName";

  # The environment of the units that run the ZFS boot scripts, which check the names they are
  # given against these same rules (no % or backslash in them: systemd's Environment= and a
  # shell's quotes keep them as they are).
  zfsRuleEnvironment = {
    BLANKSLATE_ZFS_DATASET_RULE = rules.zfsPoolDataset;
    BLANKSLATE_ZFS_SNAPSHOT_RULE = rules.zfsSnapshot;
  };

  # { A = "x y"; } -> "A='x y' ": assignments before a command in a shell script.
  shellAssignments = env: lib.concatStrings (lib.mapAttrsToList (name: value: "${name}=${lib.escapeShellArg value} ") env);

  # The types of the blankslate options: a bad value fails evaluation with the option's name.
  types = {
    size = lib.types.addCheck lib.types.str isSize // {
      name = "size";
      description = "size (digits, optionally K, M, G or T with an optional iB or B: 512MiB, 8GiB, 0)";
    };
    tmpfsSize = lib.types.addCheck lib.types.str (s: isSize s || follows "tmpfsPercent" s) // {
      name = "tmpfsSize";
      description = "tmpfs size (a size such as 2G, or a percentage of memory such as 25%)";
    };
    absolutePath = lib.types.addCheck lib.types.str isNormalPath // {
      name = "absolutePath";
      description = "absolute, normalised path (no '.', '..' or empty component, no trailing '/')";
    };
    subvolumeName = lib.types.addCheck lib.types.str isRelativeName // {
      name = "subvolumeName";
      description = "subvolume name relative to the top level (letters, digits, _ . @ + -; '/' between components; no '.' or '..')";
    };
    datasetName = lib.types.addCheck lib.types.str isDatasetName // {
      name = "datasetName";
      description = "ZFS dataset name relative to the pool (letters, digits, _ . : -; '/' between components, each starting with a letter, digit or _)";
    };
    snapshotName = lib.types.addCheck lib.types.str isSnapshotName // {
      name = "snapshotName";
      description = "ZFS snapshot name, the part after '@' (letters, digits, _ . : -; a letter, digit or _ first; no '/')";
    };
    poolName = lib.types.addCheck lib.types.str isPoolName // {
      name = "poolName";
      description = "ZFS pool name (a letter, then letters, digits, _ . -; at most 32 characters)";
    };
    label = lib.types.addCheck lib.types.str isLabel // {
      name = "label";
      description = "filesystem label or pool name (letters, digits, _ . -; at most 32 characters)";
    };
  };

  # [ "a" "b" "a" ] -> [ "a" ]
  duplicates =
    list:
    lib.unique (
      lib.filter (x: lib.length (lib.filter (y: y == x) list) > 1) list
    );

  # "directory" [ { directory = "/a"; mode = "1"; } { directory = "/a"; } { directory = "/b"; } ]
  #   -> [ { directory = "/a"; mode = "1"; } { directory = "/b"; } ]   (first one wins)
  uniqueBy =
    key: list:
    (foldl' (
      acc: x:
      if acc.seen ? ${x.${key}} then
        acc
      else
        {
          seen = acc.seen // {
            ${x.${key}} = true;
          };
          out = acc.out ++ [ x ];
        }
    ) { seen = { }; out = [ ]; } list).out;

  # "/persist" "/persist/etc" -> true ; "/persist" "/persistent" -> false ; "/" "/x" -> true
  isUnder = parent: path: parent == "/" || path == parent || hasPrefix "${parent}/" path;

  # [ "/" "/nix" "/persist" ] "/persist/passwords" -> "/persist"  (longest containing mountpoint, or null)
  mountpointOf =
    mountpoints: path:
    foldl' (
      best: m:
      if isUnder m path && (best == null || stringLength m > stringLength best) then m else best
    ) null mountpoints;

  # { "/" = { }; "/nix" = { mountPoint = "/nix"; }; } -> [ "/" "/nix" ]
  mountpointsOf = fileSystems: lib.mapAttrsToList (name: fs: fs.mountPoint or name) fileSystems;

  # { log = { mountPoint = "/var/log"; neededForBoot = true; }; } "/var/log" -> { mountPoint = "/var/log"; neededForBoot = true; }
  # { "/nix" = { }; } "/var/log" -> null
  fileSystemAt =
    fileSystems: mountpoint:
    lib.findFirst (fs: fs != null) null (
      lib.mapAttrsToList (name: fs: if (fs.mountPoint or name) == mountpoint then fs else null) fileSystems
    );

  # [ { mountPoint = "/nix"; } { mountPoint = "/"; } { mountPoint = "/nix/store"; } ]
  #   -> [ { mountPoint = "/"; } { mountPoint = "/nix"; } { mountPoint = "/nix/store"; } ]
  # Parents before children: the order to mount them in.
  sortMounts =
    mounts:
    let
      depth = m: if m.mountPoint == "/" then 0 else lib.length (splitString "/" m.mountPoint);
    in
    lib.sort (
      a: b: if depth a != depth b then depth a < depth b else a.mountPoint < b.mountPoint
    ) mounts;

  # ./x.bash [ "a" "b c" ] -> "bash -c '<text of x.bash>' x.bash 'a' 'b c'"
  # For the scripted initrd, which holds no store paths: the script travels inline.
  inlineBash = inlineBashWith [ ];

  # [ ./lib.bash ] ./x.bash [ "a" ] -> "bash -c '<text of lib.bash><text of x.bash>' x.bash 'a'"
  # A script that sources a library gets it inline too, before its own text.
  inlineBashWith =
    libraries: file: args:
    let
      text = lib.concatMapStrings (f: builtins.readFile f + "\n") libraries + builtins.readFile file;
    in
    "bash -c ${lib.escapeShellArg text} ${baseNameOf (toString file)} ${lib.escapeShellArgs args}\n";

  # ./rollback [ "btrfs-rollback.bash" "kept.bash" ] -> /nix/store/...-blankslate-scripts,
  # a directory holding those files of ./rollback at the same relative places: a script run
  # from it finds the library it sources beside it.
  scriptDir =
    root: files:
    builtins.path {
      path = root;
      name = "blankslate-scripts";
      filter = path: _type: inScriptDir root files path;
    };

  # ./rollback [ "kept.bash" ] "<abs>/rollback/kept.bash" -> true; ".../zfs.nix" -> false.
  # A directory is kept when a file named lies below it.
  inScriptDir =
    root: files: path:
    let
      relative = lib.removePrefix "${toString root}/" (toString path);
    in
    any (file: file == relative || hasPrefix "${relative}/" file) files;

  # "/var/log" [ "/" "/var/log" ] -> true
  isMountpoint = path: mountpoints: any (m: m == path) mountpoints;

  # The device of the plan's main filesystem: its last partition (null without a disk).
  mainDevice = plan: if plan.disk == null then null else (lib.last plan.disk.partitions).device;
}
