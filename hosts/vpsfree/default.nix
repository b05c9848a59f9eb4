# A vpsFree.cz VPS (docs/vpsfree.md). The platform empties / itself: with
# its impermanence feature on, the VPS starts on a fresh temporary dataset, the
# store sits in a `nix` subdataset and the VPS's own dataset is mounted on
# /persistent. Two ways to get there:
#   - new VPS: pick an OS template with "impermanence" in its name in vpsAdmin;
#     it comes with the subdataset and the mount already in place;
#   - existing VPS: boot the rescue system (a distribution without /nix),
#     create the `nix` subdataset mounted on /nix and move the old store into
#     it, mount the VPS's dataset on /persistent, reboot, write the admin's
#     password file (`blankslate passwd admin`), deploy this host with
#     `nixos-rebuild boot`, and only then turn the feature on in vpsAdmin.
# Everything not listed below is lost at the next VPS start.
{ lib, ... }:
{
  # vpsadminos.nix is the platform's own module, which vpsFree's NixOS templates put in
  # /etc/nixos: copy it here when you have it. It makes NixOS run in a vpsAdminOS
  # container (network set-up from /ifcfg.add, systemd units the container cannot run,
  # boot.isContainer, DNS defaults); it sets no users, sshd login rules or file systems.
  imports =
    lib.optional (builtins.pathExists ./hardware.nix) ./hardware.nix
    ++ lib.optional (builtins.pathExists ./vpsadminos.nix) ./vpsadminos.nix;

  networking.hostName = "vpsfree";

  # vpsAdminOS runs NixOS as a container: no bootloader, no initrd.
  boot.isContainer = true;

  blankslate = {
    enable = true;
    # Rules `blankslate ignore` writes; the server's `blankslate diff` reads them from /etc.
    audit.ignoreFile = lib.mkIf (builtins.pathExists ./audit.yaml) ./audit.yaml;
    rollback = "none";
    persistPath = "/persistent";
    disk = null;
    # vpsAdminOS mounts the dataset; no fileSystems entry for it.
    platform.mountsPersistPath = true;
    persistence = {
      directories = [
        # configuration.nix, pins.nix (or the flake) and vpsadminos.nix: the next rebuild needs them.
        "/etc/nixos"
        "/var/log"
        "/var/lib/nixos"
        # The users' homes: / is the platform's temporary dataset.
        "/home"
      ];
      files = [ "/etc/machine-id" ];
    };
    users.admin.authorizedKeys = [
      # Placeholder: replace it with your own public key.
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlaceholderReplaceMeWithYourOwnPublicKey0 admin@vpsfree"
    ];
  };

  nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux";
  system.stateVersion = "25.11";
}
