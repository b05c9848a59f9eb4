# Evaluates the blankslate modules (optionally with a host) without nixpkgs'
# NixOS modules: <nixpkgs/lib> for the module system, the real impermanence
# module for environment.persistence, and one freeform catch-all for every
# NixOS option neither declares. Used by test_eval.py.
{
  host ? null,
  extraModules ? [ ],
  # true: enter through ../../default.nix (the non-flake module, which finds
  # impermanence itself) instead of impermanence's nixos.nix + ../../modules.
  viaDefaultNix ? false,
}:
let
  lib = import <nixpkgs/lib>;
  repo = ../..;

  # Catch-all value type: attrsets merge recursively, lists concatenate (like
  # listOf), anything else must agree. Priorities and mkIf are handled by the
  # module system at every level through lazyAttrsOf. A value whose every
  # definition is under a false mkIf reads as { } (NixOS's fileSystems default).
  catchAll = lib.mkOptionType {
    name = "catchAll";
    description = "undeclared NixOS option value";
    emptyValue.value = { };
    merge =
      loc: defs:
      let
        values = map (d: d.value) defs;
      in
      if lib.all (v: lib.isAttrs v && !lib.isDerivation v) values then
        (lib.types.lazyAttrsOf catchAll).merge loc defs
      else if lib.all lib.isList values then
        lib.concatLists values
      else
        lib.mergeEqualOption loc defs;
  };

  # Reproduced from nixpkgs nixos/lib/utils.nix (not part of nixpkgs.lib):
  # impermanence and the rollback units need these two.
  utils = {
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
  };

  # impermanence only calls pkgs.callPackage ./lib.nix { } outside of the
  # derivations it builds; anything else in pkgs is absent, so forcing a
  # value that needs a package fails loudly instead of faking one.
  pkgs = {
    callPackage = fn: args: import fn ({ inherit lib; } // args);
  };

  evaluated = lib.evalModules {
    specialArgs = { inherit pkgs utils; };
    modules = [
      { freeformType = lib.types.lazyAttrsOf catchAll; }
    ]
    ++ (
      if viaDefaultNix then
        [ (repo + "/default.nix") ]
      else
        [
          <impermanence/nixos.nix>
          (repo + "/modules")
        ]
    )
    ++ lib.optional (host != null) (repo + "/hosts/${host}")
    ++ extraModules;
  };

  failed = lib.filter (a: !a.assertion) (evaluated.config.assertions or [ ]);
in
{
  inherit (evaluated) config options;
  inherit lib utils;
  failedAssertions = map (a: a.message) failed;
}
