# The example host with its paths declared the ways impermanence's README
# teaches, from modules other than blankslate's, and no /home filesystem: the
# users' paths are all that keeps their homes. Its plan is
# tests/plans/persistence.json, which the integration tier diffs and seeds.
{ lib, ... }:
{
  imports = [
    # A service module persisting its own state.
    {
      environment.persistence."/persist".directories = [
        {
          directory = "/var/lib/acme";
          user = "acme";
          group = "acme";
          mode = "0750";
        }
      ];
    }
  ];

  blankslate.btrfs.subvolumes = lib.mkForce [
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
  ];

  users.users.alice.isNormalUser = true;
  environment.persistence."/persist".users.alice = {
    directories = [
      ".ssh"
      ".local/share/app"
    ];
    files = [
      ".screenrc"
      {
        file = ".config/app/token";
        parentDirectory.mode = "0700";
      }
    ];
  };
  environment.persistence."/persist/cache".directories = [ "/var/cache/app" ];
  environment.persistence."/persist/off" = {
    enable = false;
    directories = [ "/var/off" ];
  };
  blankslate.persistence.files = [
    {
      file = "/var/lib/secret/key";
      parentDirectory.mode = "0700";
      method = "symlink";
    }
  ];
}
