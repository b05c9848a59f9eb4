# A model of Home Manager's NixOS module, for the tests that put a home.persistence in the
# plan. Written from reading nix-community/home-manager's nixos/common.nix (no code copied):
# home-manager.users.<name> is a Home Manager configuration made of its own modules plus
# home-manager.sharedModules (where impermanence's nixos.nix adds its home-manager.nix), with
# home.username and home.homeDirectory from the NixOS user of that name. Only the options
# impermanence's home-manager.nix reads or sets are declared (home.*, assertions).
{ pkgs }:
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  nixosConfig = config;
  userModule =
    { name, ... }:
    {
      options = {
        home.username = mkOption { type = types.str; };
        home.homeDirectory = mkOption { type = types.str; };
        # modules/misc/assertions.nix of Home Manager
        assertions = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
        };
      };
      config = {
        home.username = name;
        home.homeDirectory = nixosConfig.users.users.${name}.home;
      };
    };
in
{
  options.home-manager = {
    sharedModules = mkOption {
      type = types.listOf types.raw;
      default = [ ];
    };
    users = mkOption {
      default = { };
      type = types.attrsOf (
        types.submoduleWith {
          # Home Manager's modules get pkgs as a module argument.
          specialArgs = { inherit pkgs; };
          modules = [ userModule ] ++ config.home-manager.sharedModules;
        }
      );
    };
  };
}
