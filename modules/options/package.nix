# The tool on the host: `blankslate diff`, `seed`, `roots` and `recover` after a reboot.
{ lib, pkgs, ... }:
{
  options.blankslate.package = lib.mkOption {
    type = lib.types.package;
    default = pkgs.callPackage ../../package.nix { };
    defaultText = lib.literalMD ''
      with the flake's `nixosModules.default`, the flake's `packages.<system>.default`; else
      `pkgs.callPackage ./package.nix { }` of this repository (the same expression, built with
      the system's nixpkgs)
    '';
    description = ''
      The blankslate tool, installed in environment.systemPackages when blankslate is enabled,
      with shell completion for bash, zsh and fish. On the host it reads the plan from
      /etc/blankslate/plan.json and the ignore file from /etc/blankslate/audit.yaml.
    '';
  };
}
