# All blankslate modules (= the flake's nixosModules.default, minus impermanence).
# environment.persistence comes from impermanence's nixos.nix, which the
# caller imports next to this: the flake and ../default.nix do it for you.
{
  imports = [
    ./options
    ./plan.nix
    ./filesystems.nix
    ./persistence.nix
    ./server-defaults.nix
    ./warnings.nix
    ./hardening.nix
    ./guard/password-files.nix
    ./guard/persist-switch.nix
    ./audit.nix
    ./attest.nix
    ./assertions.nix
    ./boot.nix
    ./disko
    ./package.nix
    ./rollback/btrfs.nix
    ./rollback/zfs.nix
    ./rollback/tmpfs.nix
    ./rollback/none.nix
    ./snapshots/persist.nix
  ];
}
