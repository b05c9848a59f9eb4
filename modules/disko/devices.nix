# The plan's layout as disko's `disko.devices` (github:nix-community/disko).
# Pure: plan (v2, as modules/plan.nix computes it) -> attribute set. The only
# renderer: modules/plan.nix puts its value in the plan (`disko`), which
# blankslate.disko.enable sets and the Python tool prints as Nix text
# (scripts/blankslate/disko.py, `blankslate disko`).
#
# Partitions keep the plan's order through `priority` (disko sorts by it),
# its GPT names through `label`, its filesystem labels through mkfs's
# arguments, as `blankslate install` makes them; filesystems and swap are
# still found by label. The btrfs filesystem's postCreateHook makes the
# read-only blank snapshot of the empty root
# (scripts/blankslate/disko-blank-snapshot.bash); a ZFS
# root dataset's postCreateHook takes its blank snapshot.
{ lib }:
plan: diskDevice:
let
  inherit (plan) disk mounts;

  # "1GiB" -> "1G" ; "512M" -> "512M" ; "1536" -> "1K" (bytes: whole KiB, as install does)
  sgdiskSize =
    size:
    let
      m = builtins.match "([0-9]+)([KMGT])?(i?B)?" size;
    in
    if m == null then
      throw "blankslate: bad size ${size}"
    else if builtins.elemAt m 1 != null then
      "${builtins.elemAt m 0}${builtins.elemAt m 1}"
    else
      "${toString (lib.toInt (builtins.elemAt m 0) / 1024)}K";

  # lib.escapeShellArg, kept stable: names in the plan need no quoting.
  shellArg = lib.escapeShellArg;

  mountOf = device: lib.findFirst (m: m.device == device) null mounts;

  # The mounts of a btrfs partition, by subvolume name (from "subvol=NAME").
  subvolumeMount =
    device: name:
    lib.findFirst (
      m: m.device == device && m.fsType == "btrfs" && lib.elem "subvol=${name}" m.options
    ) null mounts;

  blankHook =
    btrfs:
    ''
      blankslate_root=${shellArg btrfs.rootSubvolume}
      blankslate_blank=${shellArg btrfs.blankSnapshot}
    ''
    + builtins.readFile ../../scripts/blankslate/disko-blank-snapshot.bash;

  btrfsContent =
    part:
    {
      type = "btrfs";
      extraArgs = [
        "--label"
        part.label
      ];
      subvolumes = lib.listToAttrs (
        map (
          name:
          let
            mount = subvolumeMount part.device name;
          in
          lib.nameValuePair name (
            lib.optionalAttrs (mount != null) {
              mountpoint = mount.mountPoint;
              mountOptions = lib.filter (o: o != "subvol=${name}") mount.options;
            }
          )
        ) plan.btrfs.subvolumes
      );
    }
    // lib.optionalAttrs (plan.btrfs.blankSnapshot != null) {
      postCreateHook = blankHook plan.btrfs;
    };

  content =
    part:
    if part.format == "vfat" then
      {
        type = "filesystem";
        format = "vfat";
        extraArgs = [
          "-F"
          "32"
          "-n"
          part.label
        ];
      }
      // mountAttrs part.device
    else if part.format == "swap" then
      {
        type = "swap";
        extraArgs = [
          "--label"
          part.label
        ];
      }
    else if part.format == "btrfs" then
      btrfsContent part
    else if part.format == "zfs" then
      {
        type = "zfs";
        pool = part.label;
      }
    else
      null;

  mountAttrs =
    device:
    let
      mount = mountOf device;
    in
    lib.optionalAttrs (mount != null) {
      mountpoint = mount.mountPoint;
      mountOptions = mount.options;
    };

  partition =
    index: part:
    lib.nameValuePair part.name (
      {
        priority = index + 1;
        label = part.name;
        type = lib.toUpper part.type;
        size = if part.size == null then "100%" else sgdiskSize part.size;
      }
      // lib.optionalAttrs (content part != null) { content = content part; }
    );

  # ZFS: the pool with install's properties, each dataset legacy-mounted where
  # the mount table puts it; the root dataset gets the blank snapshot.
  zpool = lib.optionalAttrs (plan.zfs != null) {
    ${plan.zfs.pool} = {
      type = "zpool";
      options.ashift = "12";
      rootFsOptions = {
        compression = "zstd";
        acltype = "posixacl";
        xattr = "sa";
        mountpoint = "legacy";
      };
      datasets = lib.listToAttrs (
        map (
          name:
          let
            dataset = "${plan.zfs.pool}/${name}";
            mount = mountOf dataset;
          in
          lib.nameValuePair name (
            {
              type = "zfs_fs";
              options.mountpoint = "legacy";
            }
            // lib.optionalAttrs (mount != null) {
              mountpoint = mount.mountPoint;
              mountOptions = mount.options;
            }
            // lib.optionalAttrs (plan.rollback == "zfs" && name == plan.zfs.rootDataset) {
              postCreateHook = ''
                zfs list -H -o name -t snapshot ${shellArg "${dataset}@${plan.zfs.blankSnapshot}"} >/dev/null 2>&1 ||
                  zfs snapshot ${shellArg "${dataset}@${plan.zfs.blankSnapshot}"}
              '';
            }
          )
        ) plan.zfs.datasets
      );
    };
  };

  # A tmpfs root (rollback "tmpfs"), which disko mounts as a nodev.
  nodev = lib.listToAttrs (
    map (
      m:
      lib.nameValuePair m.mountPoint {
        fsType = "tmpfs";
        mountOptions = m.options;
      }
    ) (lib.filter (m: m.fsType == "tmpfs") mounts)
  );
in
if disk == null then
  throw "blankslate: host ${plan.hostName} has no disk (rollback \"none\": the platform owns it), nothing for disko"
else
  {
    disk.main = {
      type = "disk";
      device = diskDevice;
      content = {
        type = "gpt";
        partitions = lib.listToAttrs (lib.imap0 partition disk.partitions);
      };
    };
  }
  // lib.optionalAttrs (zpool != { }) { inherit zpool; }
  // lib.optionalAttrs (nodev != { }) { inherit nodev; }
