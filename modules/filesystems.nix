# fileSystems and swapDevices, from the plan's derived layout (plan.nix).
# `options` is a list that nixpkgs defines too (x-initrd.mount for what the
# initrd mounts, tasks/filesystems.nix): it is set at normal priority so the
# two concatenate; mkDefault would lose every subvol= to nixpkgs' definition.
# Scalars stay mkDefault, so a host can replace them.
{ config, lib, ... }:
let
  inherit (lib) mkDefault mkIf;
  cfg = config.blankslate;
  inherit (cfg._plan) mounts;
  partitions = if cfg._plan.disk == null then [ ] else cfg._plan.disk.partitions;
in
{
  config = mkIf cfg.enable {
    fileSystems = lib.listToAttrs (
      map (
        m:
        lib.nameValuePair m.mountPoint {
          device = mkDefault m.device;
          fsType = mkDefault m.fsType;
          options = mkIf (m.options != [ ]) m.options;
          neededForBoot = mkDefault m.neededForBoot;
        }
      ) mounts
    );

    # swapDevices is a list nixpkgs leaves empty; no swap partition, no entry.
    swapDevices = map (p: { inherit (p) device; }) (lib.filter (p: p.format == "swap") partitions);
  };
}
