# Admin users: key-only SSH, wheel, hashed password read from persistPath.
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.blankslate.users = mkOption {
    default = { };
    description = "Admin users; each one's hashed password is read from <persistPath>/passwords/<name>.";
    type = types.attrsOf (
      types.submodule {
        options.authorizedKeys = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
      }
    );
  };
}
