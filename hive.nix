# Colmena hive: one node per directory in ./hosts, deployed over SSH to
# blankslate.deployment.targetHost, or to the node's name when that is null.
# Shared by flake.nix (output `colmena`) and tests/nix.
{
  lib,
  # nixpkgs instance for colmena's meta.nixpkgs
  pkgs,
  # modules every node imports (flake: self.nixosModules.default)
  modules,
  hosts ? lib.attrNames (lib.filterAttrs (_: type: type == "directory") (builtins.readDir ./hosts)),
}:
{
  meta.nixpkgs = pkgs;
}
// lib.genAttrs hosts (
  name:
  { config, ... }:
  {
    imports = modules ++ [ (./hosts + "/${name}") ];
    deployment.targetHost = lib.mkDefault (
      if config.blankslate.deployment.targetHost != null then config.blankslate.deployment.targetHost else name
    );
    # The user blankslate.ssh.deploy lets in; otherwise colmena's own default (root), which
    # these modules' sshd refuses unless blankslate.ssh.deploy.user = "root".
    deployment.targetUser = lib.mkIf (config.blankslate.ssh.deploy.user != null) (
      lib.mkDefault config.blankslate.ssh.deploy.user
    );
  }
)
