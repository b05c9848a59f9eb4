# Stand-in nixpkgs for the offline tier: derivations with a name and a store path, nothing to
# build. Forcing a package's contents fails loudly instead of faking them.
{
  lib,
  # "x86_64-linux": the system stdenv.hostPlatform names (the flake looks its packages up by it).
  system ? "x86_64-linux",
  # Marks what buildPythonApplication builds, to tell this nixpkgs from another one.
  builtBy ? "the system's nixpkgs",
}:
let
  fakePackage = name: {
    type = "derivation";
    inherit name;
    pname = name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };

  pkgs =
    lib.genAttrs [
      "bash"
      "bashInteractive"
      "btrfs-progs"
      "coreutils"
      "dosfstools"
      "findutils"
      "gawk"
      "git"
      "jq"
      "gptfdisk"
      "installShellFiles"
      "kmod"
      "less"
      "mkpasswd"
      "nix"
      "nixos-install-tools"
      "openssh"
      "parted"
      "systemd"
      "util-linux"
      "zfs"
      "ruff"
      "acl"
      "attr"
    ] fakePackage
    // {
      inherit lib;
      stdenv = {
        hostPlatform.system = system;
        buildPlatform.system = system;
        buildPlatform.canExecute = platform: platform.system == system;
      };

      # nixpkgs' callPackage: the function's arguments from pkgs, overridden by `args`.
      # (impermanence calls it for its lib.nix outside of the derivations it builds.)
      callPackage =
        fn: args:
        let
          f = if builtins.isFunction fn then fn else import fn;
        in
        f (builtins.intersectAttrs (builtins.functionArgs f) pkgs // args);

      python3Packages = lib.genAttrs [ "setuptools" "typer" "ruamel-yaml" "rich" ] fakePackage // {
        python.sitePackages = "lib/python3.13/site-packages";
        # The arguments as given, plus what makes them a derivation: the tests read them back.
        buildPythonApplication =
          args:
          args
          // {
            type = "derivation";
            inherit builtBy;
            name = "${args.pname}-${args.version}";
            outPath = "/nix/store/00000000000000000000000000000000-${args.pname}-${args.version}";
          };
      };

      # python3.withPackages: the package names chosen from a stand-in package set.
      python3 = fakePackage "python3" // {
        withPackages =
          choose:
          fakePackage "python3-env"
          // {
            chosen = map (p: p.pname) (
              choose (
                lib.genAttrs [
                  "typer"
                  "ruamel-yaml"
                  "rich"
                  "ruff"
                  "pytest"
                  "pytest-subprocess"
                  "pytest-xdist"
                  "hypothesis"
                  "mypy"
                  "pyyaml"
                  "types-pyyaml"
                ] fakePackage
              )
            );
          };
      };
      # mkShell: its arguments as given, as a derivation the tests read back.
      mkShell = args: fakePackage "nix-shell" // args;

      writeShellScript = name: text: fakePackage name // { inherit text; };
      # trivial-builders: a file in the store holding the text (the attest unit's plan).
      writeText = name: text: fakePackage name // { inherit text; };
      # impermanence's units name scripts it builds; a warning that reads
      # systemd.services forces those names, never their contents.
      # checks.pytest's environment (nativeBuildInputs) stays readable.
      runCommand = name: env: _script: fakePackage name // env;
    };
in
pkgs
