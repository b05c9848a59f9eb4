# Stand-in for disko's nixosModules.disko (module.nix), whose other parts need a
# full nixpkgs (image builders, scripts as derivations, system.build): the two
# options blankslate sets, declared as module.nix declares them, with the real
# type of disko.devices from <disko/lib>.
{ lib, ... }:
let
  diskoLib = import <disko/lib> { inherit lib; };
in
{
  options.disko = {
    devices = lib.mkOption {
      type = diskoLib.toplevel;
      default = { };
      description = "The devices to set up";
    };
    enableConfig = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "configure nixos with the specified devices";
    };
  };
}
