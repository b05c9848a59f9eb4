# flake.nix's outputs with stand-in inputs, since its real inputs cannot be fetched offline:
# <nixpkgs/lib>, ./fake-pkgs.nix as the flake's nixpkgs (what it builds says "the flake's
# nixpkgs"), impermanence's module from <impermanence>, ./disko-module.nix for disko's.
let
  lib = import <nixpkgs/lib>;
  flake = import ../../flake.nix;
  impermanence = {
    nixosModules.impermanence = import <impermanence/nixos.nix>;
  };
  disko = {
    nixosModules.disko = import ./disko-module.nix;
  };
  nixpkgs = {
    inherit lib;
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
