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
