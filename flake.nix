{
  description = "blankslate: an impermanent NixOS server, reset to a blank root at every boot";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    impermanence = {
      url = "github:nix-community/impermanence";
      # Its home-manager input already follows its nixpkgs, hence ours too.
      inputs.nixpkgs.follows = "nixpkgs";
    };

    # Only nixosModules.disko uses it (blankslate.disko.enable, for nixos-anywhere); a flake
    # that has its own disko can make ours follow it: inputs.blankslate.inputs.disko.follows.
    disko = {
      url = "github:nix-community/disko";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      impermanence,
      disko,
    }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # The tool's and its tests' Python modules, from pyproject.toml (the `test` extra).
      requirements = import ./python-requirements.nix { inherit lib; };
      testPython = ps: requirements.runtime ps ++ requirements.test ps;

      hostNames = lib.attrNames (lib.filterAttrs (_: type: type == "directory") (builtins.readDir ./hosts));

      # `nix run .#install -- ...` is `blankslate install ...`
      subcommand =
        pkgs: name:
        let
          exe = lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        in
        {
          type = "app";
          program = "${pkgs.writeShellScript "blankslate-${name}" ''exec ${exe} ${name} "$@"''}";
          meta.description = "blankslate ${name}: ${appDescriptions.${name}}";
        };

      appDescriptions = {
        install = "partition, format and lay out a disk for a host, then nixos-install";
        diff = "list what lives on / that the next boot will erase";
        seed = "copy today's data of the persisted paths into persistPath";
        passwd = "write a user's hashed password file";
        mount = "mount an existing blankslate layout (rescue, or to continue an install)";
      };
    in
    {
      # blankslate without impermanence: the configuration imports impermanence's module
      # itself, which then alone declares environment.persistence.
      nixosModules.blankslate =
        { lib, pkgs, ... }:
        {
          _file = "${toString ./flake.nix}#nixosModules.blankslate";
          key = "${toString ./flake.nix}#nixosModules.blankslate";
          imports = [ ./modules ];
          # The flake's own build of package.nix (the one `nix run` runs), on the systems it has.
          blankslate.package = lib.mkDefault (
            self.packages.${pkgs.stdenv.hostPlatform.system}.default or (pkgs.callPackage ./package.nix { })
          );
        };

      # blankslate with impermanence's module, which declares environment.persistence. It
      # also works next to the configuration's own impermanence.nixosModules.impermanence, which
      # the module system cannot tell from ours: modules/impermanence-once.nix declares the
      # option so that it merges with that import, and runs impermanence only without it.
      nixosModules.default = {
        _file = "${toString ./flake.nix}#nixosModules.default";
        key = "${toString ./flake.nix}#nixosModules.default";
        imports = [
          self.nixosModules.blankslate
          (import ./modules/impermanence-once.nix impermanence.nixosModules.impermanence)
        ];
      };

      # Next to nixosModules.default: disko's module, with disko.devices set from the
      # layout, which `nixos-anywhere --flake` partitions with (see the README).
      nixosModules.disko = {
        _file = "${toString ./flake.nix}#nixosModules.disko";
        key = "${toString ./flake.nix}#nixosModules.disko";
        imports = [ disko.nixosModules.disko ];
        blankslate.disko.enable = nixpkgs.lib.mkDefault true;
      };

      nixosConfigurations = lib.genAttrs hostNames (
        name:
        lib.nixosSystem {
          modules = [
            self.nixosModules.default
            ./hosts/${name}
          ];
        }
      );

      packages = forAllSystems (pkgs: {
        default = pkgs.callPackage ./package.nix { };
      });

      apps = forAllSystems (
        pkgs:
        {
          default = {
            type = "app";
            program = lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.default;
            meta.description = "blankslate: install, audit and seed an impermanent NixOS server";
          };
        }
        // lib.genAttrs (lib.attrNames appDescriptions) (subcommand pkgs)
      );

      # `nix develop`: the tool's Python with its test tools, and the commands the tests run
      # (btrfs-progs, parted, ...), for working on the checkout on NixOS.
      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            (pkgs.python3.withPackages testPython)
          ]
          ++ (with pkgs; [
            ruff
            btrfs-progs
            parted
            gptfdisk
            dosfstools
            util-linux
            mkpasswd
            openssh
            acl
            attr
            git
          ]);
          shellHook = ''
            export PYTHONPATH=$PWD/scripts''${PYTHONPATH:+:$PYTHONPATH}
          '';
        };
      });

      checks = forAllSystems (
        pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;
          python = pkgs.python3.withPackages testPython;
        in
        {
          # Tiers that need root or nix-instantiate skip themselves in the sandbox.
          pytest = pkgs.runCommand "blankslate-pytest" { nativeBuildInputs = [ python ]; } ''
            cp -r ${lib.cleanSource ./.} src
            chmod -R u+w src
            cd src
            PYTHONPATH=scripts python -m pytest -q -p no:cacheprovider tests
            touch $out
          '';
        }
        // lib.mapAttrs' (
          name: host: lib.nameValuePair "host-${name}" host.config.system.build.toplevel
        ) (lib.filterAttrs (_: host: host.pkgs.stdenv.hostPlatform.system == system) self.nixosConfigurations)
        # Boots the example layout twice in a VM (needs KVM; see tests/vm/rollback.nix).
        // lib.optionalAttrs (system == "x86_64-linux") {
          vm-rollback = import ./tests/vm/rollback.nix {
            inherit pkgs;
            blankslateModule = self.nixosModules.default;
          };
        }
      );

      formatter = forAllSystems (pkgs: pkgs.nixfmt-tree);

      colmena = import ./hive.nix {
        inherit lib;
        pkgs = import nixpkgs { system = "x86_64-linux"; };
        modules = [ self.nixosModules.default ];
        hosts = hostNames;
      };
    };
}
