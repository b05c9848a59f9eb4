# Options listing what survives a reboot (handed to impermanence).
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  blib = import ../lib.nix { inherit lib; };
  btypes = blib.types;

  # Every attribute impermanence takes (user, group, mode, hideMount, parentDirectory, method, ...)
  # passes through to it unchanged, and impermanence checks it; only the path is ours to check.
  passThrough =
    key:
    types.submodule {
      freeformType = types.attrsOf types.anything;
      options.${key} = mkOption { type = btypes.absolutePath; };
    };
  entries = key: types.listOf (types.coercedTo types.str (path: { ${key} = path; }) (passThrough key));
in
{
  options.blankslate.persistence = {
    directories = mkOption {
      type = entries "directory";
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
      description = ''
        Directories bind-mounted from persistPath: environment.persistence.<persistPath>.directories,
        every impermanence attribute included.
      '';
    };
    files = mkOption {
      type = entries "file";
      default = [ ];
      example = [
        "/etc/machine-id"
        {
          file = "/var/lib/app/token";
          parentDirectory.mode = "0700";
        }
      ];
      description = ''
        Files bind-mounted (or linked) from persistPath:
        environment.persistence.<persistPath>.files, every impermanence attribute included.
      '';
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

  # impermanence's evaluated environment.persistence, which the plan reads: the option itself,
  # or with the flake's nixosModules.default alone, the copy ../impermanence-once.nix runs.
  options.blankslate._persistence = mkOption {
    type = types.raw;
    default = config.environment.persistence;
    defaultText = lib.literalExpression "config.environment.persistence";
    internal = true;
    visible = false;
  };

  options.blankslate.seedOnSwitch = mkOption {
    type = types.bool;
    default = false;
    description = ''
      When a new generation persists a path whose live copy holds data while its persistent copy
      is missing or empty, copy it first (`blankslate seed --yes` with the new generation's plan)
      instead of refusing the switch. Off: the switch (and `boot`, `test`) refuses and prints
      that command. The check runs before every switch (nixpkgs' system.preSwitchChecks).
    '';
  };
}
