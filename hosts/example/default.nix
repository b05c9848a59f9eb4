# A btrfs VM: the layout the tool's built-in default plan
# describes. Its config.blankslate.plan equals scripts/blankslate/default-plan.json.
{ lib, ... }:
{
  imports = lib.optional (builtins.pathExists ./hardware.nix) ./hardware.nix;

  networking.hostName = "example";

  blankslate = {
    enable = true;
    # Rules `blankslate ignore` writes; the server's `blankslate diff` reads them from /etc.
    audit.ignoreFile = lib.mkIf (builtins.pathExists ./audit.yaml) ./audit.yaml;
    rollback = "btrfs";
    persistPath = "/persist";
    disk = {
      device = "/dev/vda";
      espSize = "1GiB";
      swapSize = "8GiB";
      label = "nixos";
    };
    btrfs = {
      rootSubvolume = "root";
      blankSnapshot = "root-blank";
      oldRoots = {
        subvolume = "old_roots";
        keepDays = 30;
      };
      subvolumes = [
        {
          name = "root";
          mountpoint = "/";
          neededForBoot = true;
        }
        {
          name = "nix";
          mountpoint = "/nix";
          neededForBoot = true;
        }
        {
          name = "persist";
          mountpoint = "/persist";
          neededForBoot = true;
        }
        {
          name = "log";
          mountpoint = "/var/log";
          neededForBoot = true;
        }
        {
          name = "home";
          mountpoint = "/home";
          # Mounted in the initrd: a new user's home is created before stage 2 mounts the
          # rest, and impermanence wants persisted home paths on a neededForBoot filesystem.
          neededForBoot = true;
        }
      ];
    };
    users.admin.authorizedKeys = [
      # Placeholder: replace it with your own public key before installing.
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderReplaceMeWithYourOwnPublicKey0 admin@example"
    ];
  };

  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";
  system.stateVersion = "25.11";
}
