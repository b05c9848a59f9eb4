# Checks that would otherwise surface as an unbootable or state-losing system.
# The layout's own checks live with the plan (plan.nix); they are repeated
# here so a system build reports all of them at once.
{ config, lib, ... }:
let
  cfg = config.blankslate;
  blib = import ./lib.nix { inherit lib; };
  fileSystems = config.fileSystems;
  persistFs = blib.mountpointOf (blib.mountpointsOf fileSystems) cfg.persistPath;
  persistFsNeededForBoot =
    persistFs != null
    && persistFs != "/"
    && ((blib.fileSystemAt fileSystems persistFs).neededForBoot or false);
  platformMounted = cfg.rollback == "none" && cfg.platform.mountsPersistPath;
in
{
  config = lib.mkIf cfg.enable {
    assertions =
      map (message: {
        assertion = false;
        inherit message;
      }) cfg._layoutErrors
      ++ [
        {
          # Root login is off and the admins log in by key only: without one, nobody can.
          assertion = cfg.users == { } || lib.any (admin: admin.authorizedKeys != [ ]) (lib.attrValues cfg.users);
          message = "blankslate: no admin has an SSH key, so nobody could log in: set ${
            lib.concatMapStringsSep " or " (name: "blankslate.users.${name}.authorizedKeys") (lib.attrNames cfg.users)
          }";
        }
        {
          assertion = cfg.rollback != "zfs" || (config.networking.hostId or null) != null;
          message = "blankslate: rollback \"zfs\" needs networking.hostId (8 hex digits, e.g. from `head -c4 /dev/urandom | od -A none -t x4`).";
        }
        {
          assertion = platformMounted || persistFsNeededForBoot;
          message = "blankslate: persistPath ${cfg.persistPath} must be on its own filesystem with neededForBoot = true (found: ${
            if persistFs == null then "no filesystem" else persistFs
          }); it is read in the initrd and / does not survive a reboot.";
        }
      ];
  };
}
