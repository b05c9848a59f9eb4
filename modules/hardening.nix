# Server hardening: key-only sshd with host keys in persistPath, declarative
# users whose password hashes live in persistPath, sudo, firewall.
{ config, lib, ... }:
let
  inherit (lib) mkDefault mkIf;
  cfg = config.blankslate;
  passwordFiles = lib.listToAttrs (map (u: lib.nameValuePair u.name u.hashedPasswordFile) cfg._plan.users);

  # blankslate.ssh.deploy: root by key, or a user of its own, for remote deploys.
  deploy = cfg.ssh.deploy;
  deployKeys =
    if deploy.authorizedKeys != [ ] then
      deploy.authorizedKeys
    else
      lib.concatMap (admin: admin.authorizedKeys) (lib.attrValues cfg.users);
  deployAsRoot = deploy.user == "root";
  deployUser = deploy.user != null && !deployAsRoot;
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
        PermitRootLogin = if deployAsRoot then "prohibit-password" else "no";
        X11Forwarding = false;
        AllowAgentForwarding = false;
        AllowStreamLocalForwarding = false;
        AuthenticationMethods = "publickey";
      };
    };

    # Users are recreated from the configuration at every boot anyway.
    users.mutableUsers = mkDefault false;
    users.users =
      lib.mapAttrs (name: user: {
        isNormalUser = mkDefault true;
        extraGroups = [ "wheel" ];
        openssh.authorizedKeys.keys = user.authorizedKeys;
        hashedPasswordFile = mkDefault passwordFiles.${name};
      }) cfg.users
      // lib.optionalAttrs deployAsRoot { root.openssh.authorizedKeys.keys = deployKeys; }
      // lib.optionalAttrs deployUser {
        # Key only: no password file, so no password login and no password to leak.
        ${deploy.user} = {
          isNormalUser = mkDefault true;
          openssh.authorizedKeys.keys = deployKeys;
        };
      };

    # nixos-rebuild --target-host USER@host --sudo runs switch-to-configuration through sudo
    # without a terminal; the daemon must accept the closure it copies (unsigned).
    security.sudo.extraRules = lib.optional deployUser {
      users = [ deploy.user ];
      commands = [
        {
          command = "ALL";
          options = [ "NOPASSWD" ];
        }
      ];
    };
    nix.settings.trusted-users = lib.optional deployUser deploy.user;

    assertions = [
      {
        assertion = !(deployUser && cfg.users ? ${deploy.user});
        message = "blankslate: blankslate.ssh.deploy.user = \"${toString deploy.user}\" is an admin too: give the deploy user a name of its own";
      }
      {
        assertion = deploy.user == null || deployKeys != [ ];
        message = "blankslate: blankslate.ssh.deploy.user is set but no key may log in as it: set blankslate.ssh.deploy.authorizedKeys";
      }
    ];

    security.sudo.enable = mkDefault true;
    # A fresh root means a fresh lecture at every boot otherwise.
    security.sudo.extraConfig = "Defaults lecture = never";

    networking.firewall.enable = mkDefault true;
  };
}
