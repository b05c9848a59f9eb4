# A boot-time guard against the lockout of immutable users: root login is off
# and users.mutableUsers is false, so an admin whose password file is missing
# or broken can log in with a key but never use sudo. ./password-files.bash
# (the same file the tests run) checks each admin's file after the local
# filesystems are up and writes a critical line to the journal and the console
# for each problem. Nothing requires the unit: when it fails, the boot goes on
# and `systemctl --failed` lists it.
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:
let
  cfg = config.blankslate;
  files = map (user: user.hashedPasswordFile) cfg._plan.users;
in
{
  options.blankslate.guard.passwordFiles = lib.mkOption {
    type = lib.types.bool;
    default = true;
    description = ''
      Check every admin's password file at boot (exists, regular, 0600, root's, holding a
      password hash) and log a critical warning when one is not; `blankslate doctor
      --only passwords` runs the same check by hand.
    '';
  };

  config = lib.mkIf (cfg.enable && cfg.guard.passwordFiles && files != [ ]) {
    systemd.services.blankslate-password-guard = {
      description = "blankslate: check the admins' password files (sudo lockout)";
      wantedBy = [ "multi-user.target" ];
      # persistPath is mounted in the initrd or by the platform; the users are set up by
      # the activation, before any unit starts.
      after = [ "local-fs.target" ];
      path = [ pkgs.coreutils ];
      # The hash rules passwordfile.py (doctor, passwd) reads too: one rule, one file.
      environment.BLANKSLATE_HASH_RULES = "${../../scripts/blankslate/password-hashes.txt}";
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${pkgs.bash}/bin/bash ${
          utils.escapeSystemdExecArgs ([ "${./password-files.bash}" ] ++ files)
        }";
        StandardOutput = "journal+console";
      };
    };
  };
}
