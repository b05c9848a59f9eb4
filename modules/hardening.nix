# Server hardening: key-only sshd with host keys in persistPath, declarative
# users whose password hashes live in persistPath, sudo, firewall.
{ config, lib, ... }:
let
  inherit (lib) mkDefault mkIf;
  cfg = config.blankslate;
  passwordFiles = lib.listToAttrs (map (u: lib.nameValuePair u.name u.hashedPasswordFile) cfg._plan.users);
in
{
  config = mkIf cfg.enable {
    services.openssh = {
      enable = mkDefault true;
      # Generated straight into persistPath: nothing to bind-mount, no key change after a reset.
      # The type is in the file's name, as `blankslate install` reads it to make the key.
      hostKeys = mkDefault (
        map (
          path:
          if lib.hasSuffix "/ssh_host_rsa_key" path then
            {
              type = "rsa";
              bits = 4096;
              inherit path;
            }
          else
            {
              type = "ed25519";
              inherit path;
            }
        ) cfg._plan.sshHostKeys
      );
      allowSFTP = mkDefault cfg.ssh.allowSFTP;
      settings = lib.mapAttrs (_: mkDefault) {
        PasswordAuthentication = false;
        KbdInteractiveAuthentication = false;
        PermitRootLogin = "no";
        X11Forwarding = false;
        AllowAgentForwarding = false;
        AllowStreamLocalForwarding = false;
        AuthenticationMethods = "publickey";
      };
    };

    # Users are recreated from the configuration at every boot anyway.
    users.mutableUsers = mkDefault false;
    users.users = lib.mapAttrs (name: user: {
      isNormalUser = mkDefault true;
      extraGroups = [ "wheel" ];
      openssh.authorizedKeys.keys = user.authorizedKeys;
      hashedPasswordFile = mkDefault passwordFiles.${name};
    }) cfg.users;

    security.sudo.enable = mkDefault true;
    # A fresh root means a fresh lecture at every boot otherwise.
    security.sudo.extraConfig = "Defaults lecture = never";

    networking.firewall.enable = mkDefault true;
  };
}
