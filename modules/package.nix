# The tool on the host (option in options/package.nix). environment.systemPackages is a list
# nixpkgs defines too (nixos/modules/config/system-path.nix): set at normal priority, it
# concatenates with nixpkgs' packages and the user's.
{ config, lib, ... }:
let
  cfg = config.blankslate;
in
{
  config = lib.mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];
  };
}
