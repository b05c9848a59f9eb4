# What survives a reboot, handed to the real impermanence module
# (environment.persistence must be declared: import impermanence's nixos.nix).
{ config, lib, ... }:
let
  cfg = config.blankslate;
  blib = import ./lib.nix { inherit lib; };
  # From our own layout, never config.fileSystems: impermanence before September 2025
  # defines fileSystems from the persistence lists, which would close a loop.
  varLogIsOwnFilesystem = blib.isMountpoint "/var/log" (map (m: m.mountPoint) cfg._plan.mounts);
  # nixos/modules/services/networking/dhcpcd.nix runs dhcpcd (on by default, with
  # networking.useDHCP) as user dhcpcd with StateDirectory "dhcpcd": its DUID and leases.
  net = config.networking;
  dhcpcdRuns =
    net.dhcpcd.enable && (net.useDHCP || lib.any (i: i.useDHCP == true) (lib.attrValues net.interfaces));
in
{
  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      (lib.mkIf cfg.persistence.serverDefaults {
        blankslate.persistence.directories = lib.mkAfter (
          [
            "/var/lib/nixos"
            "/var/lib/systemd"
          ]
          ++ lib.optional (!varLogIsOwnFilesystem) "/var/log"
          # Owner and mode as systemd makes a StateDirectory (StateDirectoryMode= 0755).
          ++ lib.optional dhcpcdRuns {
            directory = "/var/lib/dhcpcd";
            user = "dhcpcd";
            group = "dhcpcd";
            mode = "0755";
          }
        );
        blankslate.persistence.files = lib.mkAfter [ "/etc/machine-id" ];
      })
      {
        environment.persistence.${cfg.persistPath} = {
          hideMounts = lib.mkDefault true;
          # serverDefaults and the user may both name a path; impermanence refuses duplicates.
          directories = blib.uniqueBy "directory" cfg.persistence.directories;
          files = blib.uniqueBy "file" cfg.persistence.files;
          users = lib.mapAttrs (_: user: user.persist) (
            lib.filterAttrs (_: user: user.persist.directories != [ ] || user.persist.files != [ ]) cfg.users
          );
        };
      }
    ]
  );
}
