# A disko.devices value evaluated with disko's real types (<disko/lib>, the
# option type of disko.devices in disko's module.nix): returns the scripts
# disko would run and the NixOS configuration it derives. diskoLib needs
# nothing of nixpkgs beyond lib for these (its pkgs-taking parts, the
# packages and the script derivations, are not forced).
{
  devices,
  rootMountPoint ? "/mnt",
  # More definitions of disko.devices, merged with `devices` (the integration test names
  # partition nodes there: without udev, /dev/disk/by-partlabel does not exist).
  extraDevices ? [ ],
}:
let
  lib = import <nixpkgs/lib>;
  diskoLib = import <disko/lib> { inherit lib rootMountPoint; };
  evaluated = lib.evalModules {
    modules = [
      {
        options.disko.devices = lib.mkOption { type = diskoLib.toplevel; };
        config.disko.devices = devices;
      }
    ]
    ++ map (extra: { config.disko.devices = extra; }) extraDevices;
  };
  top = evaluated.config.disko.devices;
  # disko's _config holds module definitions (mkMerge); a loose module system
  # reads them as the NixOS module would.
  nixos = lib.evalModules {
    modules = [
      {
        freeformType = lib.types.attrsOf lib.types.anything;
        options.fileSystems = lib.mkOption {
          type = lib.types.attrsOf (lib.types.attrsOf lib.types.anything);
          default = { };
        };
        options.swapDevices = lib.mkOption {
          type = lib.types.listOf (lib.types.attrsOf lib.types.anything);
          default = [ ];
        };
        options.boot.loader.grub.devices = lib.mkOption {
          type = lib.types.listOf lib.types.str;
          default = [ ];
        };
      }
      { config = top._config; }
    ];
  };
in
{
  inherit (top) _create _mount _unmount;
  fileSystems = nixos.config.fileSystems;
  inherit (nixos.config) swapDevices;
  grubDevices = nixos.config.boot.loader.grub.devices;
  partitions = lib.mapAttrs (
    _: disk:
    map (p: {
      inherit (p)
        name
        label
        type
        size
        device
        _index
        ;
    }) (lib.sort (a: b: a._index < b._index) (lib.attrValues disk.content.partitions))
  ) top.disk;
}
