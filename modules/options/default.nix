{
  imports = [
    ./core.nix
    ./btrfs.nix
    ./zfs.nix
    ./persistence.nix
    ./users.nix
    ./ssh.nix
    ./package.nix
  ];
}
