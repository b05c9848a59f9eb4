# flake.nix's outputs with stand-in inputs, since its real inputs cannot be fetched offline:
# <nixpkgs/lib>, ./fake-pkgs.nix as the flake's nixpkgs (what it builds says "the flake's
# nixpkgs"), impermanence from <impermanence> (or the source given, e.g. <impermanence-2025-01>),
# ./disko-module.nix for disko's.
{
  impermanenceSource ? <impermanence>,
}:
let
  lib = import <nixpkgs/lib>;
  flake = import ../../flake.nix;
  # What a flake input is: its source (outPath) and its outputs; impermanence's flake.nix
  # has nixosModules.impermanence = import ./nixos.nix (a function value, not a path).
  impermanence = {
    outPath = impermanenceSource;
    nixosModules.impermanence = import (impermanenceSource + "/nixos.nix");
  };
  disko = {
    nixosModules.disko = import ./disko-module.nix;
  };
  nixpkgs = {
    # nixpkgs' flake adds nixosSystem to its lib; a full system needs all of nixpkgs, so a
    # stand-in gives the attributes the flake's checks read (tests/nix/eval.nix evaluates
    # the hosts themselves).
    lib = lib // {
      nixosSystem = _: {
        pkgs.stdenv.hostPlatform.system = "x86_64-linux";
        config.system.build.toplevel = throw "no NixOS system here";
      };
    };
    outPath = throw "no nixpkgs here";
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (
      system:
      import ./fake-pkgs.nix {
        inherit lib system;
        builtBy = "the flake's nixpkgs";
      }
    );
  };
  outputs = flake.outputs {
    self = outputs;
    inherit nixpkgs impermanence disko;
  };
in
outputs
