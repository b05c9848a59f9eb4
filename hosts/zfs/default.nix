# Root on ZFS, rolled back to <pool>/root@blank in the initrd at every boot.
{ lib, ... }:
{
  imports = lib.optional (builtins.pathExists ./hardware.nix) ./hardware.nix;

  networking.hostName = "zfs";
  # ZFS refuses to import a pool last used by another host id.
  networking.hostId = "8425e349";

  blankslate = {
    enable = true;
    # Rules `blankslate ignore` writes; the server's `blankslate diff` reads them from /etc.
    audit.ignoreFile = lib.mkIf (builtins.pathExists ./audit.yaml) ./audit.yaml;
    rollback = "zfs";
    disk = {
      device = "/dev/vda";
      label = "rpool";
    };
    zfs = {
      pool = "rpool";
      rootDataset = "local/root";
      blankSnapshot = "blank";
      datasets = [
        {
          name = "local/root";
          mountpoint = "/";
        }
        {
          name = "local/nix";
          mountpoint = "/nix";
        }
        {
          name = "safe/persist";
          mountpoint = "/persist";
        }
        {
          name = "safe/log";
          mountpoint = "/var/log";
        }
        # Users' homes survive a reboot whole.
        {
          name = "safe/home";
          mountpoint = "/home";
        }
      ];
    };
    users.admin.authorizedKeys = [
      # Placeholder: replace it with your own public key.
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderReplaceMeWithYourOwnPublicKey0 admin@zfs"
    ];
  };

  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";
  system.stateVersion = "25.11";
}
