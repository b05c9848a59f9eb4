# blankslate.disko.enable: disko.devices from the plan's layout (./devices.nix),
# for a flake that imports disko's NixOS module (nixos-anywhere partitions
# with it). blankslate keeps fileSystems and swapDevices (by label, with
# neededForBoot, from the same plan), so disko's own NixOS configuration is
# off by default: it would name the same mounts a second time, by partlabel.
{
  config,
  lib,
  options,
  ...
}:
let
  cfg = config.blankslate;
  enabled = cfg.enable && cfg.disko.enable;
  # Rendered once, in the plan (./devices.nix via ../plan.nix).
  devices = cfg._plan.disko;
in
{
  options.blankslate.disko.enable = lib.mkEnableOption "disko.devices from the blankslate layout (import disko's nixosModules.disko too)";

  config = lib.mkMerge [
    (lib.mkIf enabled {
      assertions = [
        {
          assertion = options ? disko.devices;
          message = "blankslate: blankslate.disko.enable needs disko's NixOS module (imports = [ disko.nixosModules.disko ])";
        }
        {
          assertion = cfg.disk != null && cfg.disk.device != null;
          message = "blankslate: blankslate.disko.enable needs blankslate.disk.device (the disk disko partitions)";
        }
      ];
    })
    # Only where disko's module declares the options: without it this module sets nothing.
    (lib.optionalAttrs (options ? disko.devices) (
      lib.mkIf (enabled && cfg.disk != null && cfg.disk.device != null) {
        disko.devices = devices;
        disko.enableConfig = lib.mkDefault false;
      }
    ))
  ];
}
