# / on tmpfs; btrfs subvolumes hold /nix, /persist and /var/log.
{ lib, ... }:
{
  imports = lib.optional (builtins.pathExists ./hardware.nix) ./hardware.nix;

  networking.hostName = "tmpfs";

  blankslate = {
    enable = true;
    # Rules `blankslate ignore` writes; the server's `blankslate diff` reads them from /etc.
    audit.ignoreFile = lib.mkIf (builtins.pathExists ./audit.yaml) ./audit.yaml;
    rollback = "tmpfs";
    tmpfs.size = "2G";
    disk = {
      device = "/dev/vda";
      label = "nixos";
    };
    btrfs.subvolumes = [
      {
        name = "nix";
        mountpoint = "/nix";
      }
      {
        name = "persist";
        mountpoint = "/persist";
      }
      {
        name = "log";
        mountpoint = "/var/log";
      }
      # Users' homes survive a reboot whole.
      {
        name = "home";
        mountpoint = "/home";
      }
    ];
    users.admin.authorizedKeys = [
      # Placeholder: replace it with your own public key.
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderReplaceMeWithYourOwnPublicKey0 admin@tmpfs"
    ];
  };

  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";
  system.stateVersion = "25.11";
}
