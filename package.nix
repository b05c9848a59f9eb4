# The `blankslate` tool, built from pyproject.toml. One derivation for every entry point:
# flake.nix builds packages.default (and the apps) with `pkgs.callPackage ./package.nix { }`, and
# the modules default `blankslate.package` to the same call for configurations without flakes.
# Without flakes, the tool alone:
#   nix-build -E 'with import <nixpkgs> { }; callPackage ./package.nix { }'
{
  lib,
  stdenv,
  python3Packages,
  installShellFiles,
  # What `blankslate` runs: disks, filesystems, passwords, host keys, nix itself.
  btrfs-progs,
  coreutils,
  dosfstools,
  git,
  gptfdisk,
  mkpasswd,
  nix,
  nixos-install-tools,
  openssh,
  parted,
  systemd,
  util-linux,
  zfs,
}:
let
  pyproject = lib.importTOML ./pyproject.toml;
  requirements = import ./python-requirements.nix { inherit lib; };
in
python3Packages.buildPythonApplication {
  pname = pyproject.project.name;
  inherit (pyproject.project) version;
  pyproject = true;

  # What setuptools reads: pyproject.toml, the README it names, the package and its data
  # (no tests, hosts, caches or local virtual environments).
  src = lib.cleanSourceWith {
    name = "blankslate-source";
    src = ./.;
    filter =
      path: type:
      let
        relative = lib.removePrefix (toString ./. + "/") (toString path);
        inPackage = builtins.match "scripts/blankslate/[^/]+" relative != null;
      in
      lib.elem relative [
        "pyproject.toml"
        "README.md"
        "scripts"
        "scripts/blankslate"
      ]
      || (
        inPackage
        && type == "regular"
        && (
          lib.hasSuffix ".py" relative
          || lib.hasSuffix ".json" relative
          || lib.hasSuffix ".bash" relative
          || lib.hasSuffix ".txt" relative
          || baseNameOf relative == "py.typed"
        )
      );
  };

  # pyproject.toml's build-system.requires and project.dependencies.
  build-system = [ python3Packages.setuptools ];
  dependencies = requirements.runtime python3Packages;

  nativeBuildInputs = [ installShellFiles ];

  makeWrapperArgs = [
    "--prefix"
    "PATH"
    ":"
    (lib.makeBinPath [
      btrfs-progs
      coreutils
      dosfstools
      git
      gptfdisk
      mkpasswd
      nixos-install-tools
      openssh
      parted
      systemd
      util-linux
    ])
    # The system's own zfs and nix first: zfs must match the kernel module, nix is the one the
    # system configures (nix.package). These are for where the system has none (an installer).
    "--suffix"
    "PATH"
    ":"
    (lib.makeBinPath [
      zfs
      nix
    ])
  ];

  # Completion for bash, zsh and fish, where NixOS finds it through environment.systemPackages.
  # The console script is not wrapped yet: it finds the package and typer through PYTHONPATH.
  postInstall = lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    export PYTHONPATH="$out/${python3Packages.python.sitePackages}:$PYTHONPATH"
    for shell in bash zsh fish; do
      "$out/bin/blankslate" completion "$shell" > "completion.$shell"
    done
    installShellCompletion \
      --bash --name blankslate completion.bash \
      --zsh --name _blankslate completion.zsh \
      --fish --name blankslate.fish completion.fish
  '';

  # The suite runs as the flake's checks.<system>.pytest.
  doCheck = false;
  pythonImportsCheck = [ "blankslate.cli" ];

  meta = {
    description = "Install, audit and seed an impermanent NixOS server";
    mainProgram = "blankslate";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
  };
}
