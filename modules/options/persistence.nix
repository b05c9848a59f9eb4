# Options listing what survives a reboot (handed to impermanence).
{ lib, ... }:
let
  inherit (lib) mkOption types;
  blib = import ../lib.nix { inherit lib; };
  btypes = blib.types;

  directory = types.submodule {
    options = {
      directory = mkOption { type = btypes.absolutePath; };
      user = mkOption {
        type = types.str;
        default = "root";
      };
      group = mkOption {
        type = types.str;
        default = "root";
      };
      mode = mkOption {
        type = types.strMatching "0?[0-7]{3,4}";
        default = "0755";
      };
    };
  };

  file = types.submodule {
    options.file = mkOption { type = btypes.absolutePath; };
  };
in
{
  options.blankslate.persistence = {
    directories = mkOption {
      type = types.listOf (types.coercedTo types.str blib.toDirectory directory);
      default = [ ];
      example = [
        "/var/lib/postgresql"
        {
          directory = "/var/lib/acme";
          user = "acme";
          group = "acme";
          mode = "0750";
        }
      ];
      description = "Directories bind-mounted from persistPath.";
    };
    files = mkOption {
      type = types.listOf (types.coercedTo types.str blib.toFile file);
      default = [ ];
      description = "Files bind-mounted from persistPath.";
    };
    serverDefaults = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Also persist /var/lib/nixos (uid/gid map), /var/lib/systemd (timers,
        random seed), /var/log unless it is its own filesystem, and
        /etc/machine-id (journal continuity).
      '';
    };
  };
}
