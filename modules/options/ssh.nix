# sshd choices the hosts may make; hardening.nix applies them.
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.blankslate.ssh = {
    allowSFTP = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Keep sshd's SFTP subsystem (sftp, sshfs, scp in its SFTP mode). false sets
        services.openssh.allowSFTP = false.
      '';
    };
    deploy = {
      user = mkOption {
        type = types.nullOr (types.strMatching "[a-z_][a-z0-9_-]*");
        default = null;
        example = "deploy";
        description = ''
          Who `nixos-rebuild --target-host` and colmena log in as; null (the default): nobody
          but the admins, whose sudo asks for their password, so only a deploy from the host
          itself works. "root": root by key only (PermitRootLogin = "prohibit-password").
          Any other name: a user of that name, key only, with sudo without a password (for
          `nixos-rebuild --target-host NAME@host --sudo`) and trusted by the Nix daemon (to
          receive closures). Either is as powerful as root: give it its own key.
        '';
      };
      authorizedKeys = mkOption {
        type = types.listOf types.singleLineStr;
        default = [ ];
        description = "Public keys that may log in as blankslate.ssh.deploy.user; empty: every admin's keys.";
      };
    };
    rsaHostKey = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Also keep a 4096-bit RSA host key in <persistPath>/etc/ssh/ssh_host_rsa_key, next to
        the ed25519 one, for clients too old for ed25519. `blankslate install` makes it too.
      '';
    };
  };
}
