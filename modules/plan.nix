# The plan: every fact the Python tool needs, computed from the options
# (plan v1 of DESIGN.md) and installed as /etc/blankslate/plan.json.
{ config, lib, ... }:
let
  cfg = config.blankslate;
  blib = import ./lib.nix { inherit lib; };
  onTmpfs = cfg.rollback == "tmpfs";
in
{
  options.blankslate.plan = lib.mkOption {
    type = lib.types.attrs;
    readOnly = true;
    internal = true;
    description = "Plan v1 handed to the blankslate tool (computed, do not set).";
  };

  config = {
    blankslate.plan = {
      version = 1;
      hostName = config.networking.hostName;
      inherit (cfg) rollback persistPath;

      disk =
        if cfg.disk == null then
          null
        else
          {
            inherit (cfg.disk)
              device
              espSize
              swapSize
              label
              ;
          };

      # tmpfs keeps btrfs for /nix and the persisted subvolumes, without a root to roll back.
      btrfs =
        if cfg.rollback == "btrfs" || (onTmpfs && cfg.disk != null) then
          {
            rootSubvolume = if onTmpfs then null else cfg.btrfs.rootSubvolume;
            blankSnapshot = if onTmpfs then null else cfg.btrfs.blankSnapshot;
            oldRoots = if onTmpfs then null else { inherit (cfg.btrfs.oldRoots) subvolume keepDays; };
            subvolumes = map (s: {
              inherit (s)
                name
                mountpoint
                options
                neededForBoot
                ;
            }) cfg.btrfs.subvolumes;
          }
        else
          null;

      zfs =
        if cfg.rollback == "zfs" then
          {
            inherit (cfg.zfs) pool rootDataset blankSnapshot;
            datasets = map (d: { inherit (d) name mountpoint; }) cfg.zfs.datasets;
          }
        else
          null;

      tmpfs = if onTmpfs then { inherit (cfg.tmpfs) size; } else null;

      persistence = {
        directories = blib.uniqueBy "directory" (
          map (d: {
            inherit (d)
              directory
              user
              group
              mode
              ;
          }) cfg.persistence.directories
        );
        files = blib.uniqueBy "file" (map (f: { inherit (f) file; }) cfg.persistence.files);
      };

      # attrNames is sorted, so users come out sorted by name.
      users = map (name: {
        inherit name;
        hashedPasswordFile = "${cfg.persistPath}/passwords/${name}";
      }) (lib.attrNames cfg.users);

      sshHostKeys = [ "${cfg.persistPath}/etc/ssh/ssh_host_ed25519_key" ];

      audit = { inherit (cfg.audit) ignore; };
    };

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
