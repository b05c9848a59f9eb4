# Evaluates the blankslate modules (optionally with a host) without nixpkgs'
# NixOS modules: <nixpkgs/lib> for the module system, the real impermanence
# module for environment.persistence, and ./nixos-model.nix for the NixOS
# options our modules set, with nixpkgs' own definitions on them. No
# freeform catch-all: `_module.check` rejects any option nobody declares.
{
  host ? null,
  extraModules ? [ ],
  # true: enter through ../../default.nix (the non-flake module, which finds
  # impermanence itself) instead of impermanence's nixos.nix + ../../modules.
  viaDefaultNix ? false,
  # true: enter through the flake's nixosModules.default (./flake-outputs.nix).
  viaFlake ? false,
  # The impermanence source: <impermanence> (today's), or an older pin such as
  # <impermanence-2025-01>, which the flake variants get as their input too.
  impermanence ? <impermanence>,
  # The flake's module to enter through with viaFlake: "default" (bundles impermanence)
  # or "blankslate" (without it; the caller brings impermanence, e.g. in extraModules).
  flakeModule ? "default",
}:
let
  lib = import <nixpkgs/lib>;
  repo = ../..;

  # nixos/lib/utils.nix is not part of nixpkgs.lib; these are written from it.
  utils = rec {
    pathsNeededForBoot = [
      "/"
      "/nix"
      "/nix/store"
      "/var"
      "/var/log"
      "/var/lib"
      "/var/lib/nixos"
      "/etc"
      "/usr"
    ];
    # "/dev/disk/by-label/my-root" -> "dev-disk-by\x2dlabel-my\x2droot"
    escapeSystemdPath =
      s:
      let
        replacePrefix =
          p: r: s:
          (if (lib.hasPrefix p s) then r + (lib.removePrefix p s) else s);
        trim = s: lib.removeSuffix "/" (lib.removePrefix "/" s);
        normalizedPath = lib.strings.normalizePath s;
      in
      lib.replaceStrings [ "/" ] [ "-" ] (
        replacePrefix "." (lib.strings.escapeC [ "." ] ".") (
          lib.strings.escapeC (lib.stringToCharacters " !\"#$%&'()*+,;<=>=@[\\]^`{|}~-") (
            if normalizedPath == "/" then normalizedPath else trim normalizedPath
          )
        )
      );
    # Exec* lines: each argument JSON-quoted, % and $ doubled.
    escapeSystemdExecArg =
      arg: lib.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON (toString arg));
    escapeSystemdExecArgs = lib.concatMapStringsSep " " escapeSystemdExecArg;
  };

  pkgs = import ./fake-pkgs.nix { inherit lib; };

  evaluated = lib.evalModules {
    specialArgs = { inherit pkgs utils; };
    modules = [
      (import ./nixos-model.nix { inherit pkgs; })
    ]
    ++ (
      if viaDefaultNix then
        [ (repo + "/default.nix") ]
      else if viaFlake then
        [ (import ./flake-outputs.nix { impermanenceSource = impermanence; }).nixosModules.${flakeModule} ]
      else
        [
          (impermanence + "/nixos.nix")
          (repo + "/modules")
        ]
    )
    ++ lib.optional (host != null) (repo + "/hosts/${host}")
    ++ extraModules;
  };

  failed = lib.filter (a: !a.assertion) evaluated.config.assertions;
in
{
  inherit (evaluated) config options;
  inherit lib utils pkgs impermanence;
  failedAssertions = map (a: a.message) failed;
}
