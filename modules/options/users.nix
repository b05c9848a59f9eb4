# Admin users: key-only SSH, wheel, hashed password read from persistPath.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  # Paths relative to the user's home; attribute sets pass through to impermanence as they are.
  homePaths =
    what:
    mkOption {
      type = types.listOf (types.either types.str (types.attrsOf types.anything));
      default = [ ];
      description = "The user's own ${what}, relative to the home directory: environment.persistence.<persistPath>.users.<name>.${what}.";
    };
in
{
  options.blankslate.users = mkOption {
    default = { };
    description = "Admin users; each one's hashed password is read from <persistPath>/passwords/<name>.";
    type = types.attrsOf (
      types.submodule {
        options = {
          authorizedKeys = mkOption {
            type = types.listOf types.str;
            default = [ ];
          };
          persist.directories = homePaths "directories";
          persist.files = homePaths "files";
        };
      }
    );
  };
}
