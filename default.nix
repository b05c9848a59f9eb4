# Non-flake entry point. This file is a NixOS module:
#
#   imports = [ /path/to/blankslate ];
#
# It brings the blankslate modules and impermanence's NixOS module. The
# impermanence source comes from ./pins.nix when present, the file
# `blankslate pin` writes ({ impermanence = builtins.fetchTarball { url; sha256; }; ... }),
# else from <impermanence> on NIX_PATH. Nothing here uses flakes; nixpkgs
# (pkgs, lib) is the caller's. The modules install the tool, blankslate.package,
# built from ./package.nix with that nixpkgs (the flake builds the same file).
let
  pins = if builtins.pathExists ./pins.nix then import ./pins.nix else { impermanence = <impermanence>; };
in
{
  imports = [
    (pins.impermanence + "/nixos.nix")
    ./modules
  ];
  # Without flakes, the configuration itself (configuration.nix, pins.nix) lives in /etc/nixos.
  blankslate.persistence.directories = [ "/etc/nixos" ];
}
