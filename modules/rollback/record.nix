# The boot record of the rollback kinds without a reset script of their own (tmpfs, none):
# a step of the initrd, once / is mounted, runs ./record-root.bash KIND. Imported by
# ./tmpfs.nix and ./none.nix with their kind; not a module of its own.
#
# The record lives in /run/blankslate, which stage 2 sees: the systemd initrd bind-mounts
# /run on /sysroot/run and switch-root keeps it (nixpkgs nixos/modules/system/boot/systemd/
# initrd.nix, the /sysroot/run mount), and the scripted stage 1 runs
# `mount --move /run $targetRoot/run` before switch_root
# (nixos/modules/system/boot/stage-1-init.sh); stage 2's specialfs activation only remounts
# a /run that is already mounted (nixos/modules/system/activation/activation-script.nix).
{
  config,
  lib,
  pkgs,
  utils,
  kind,
  description,
}:
let
  blib = import ../lib.nix { inherit lib; };
  systemdInitrd = config.boot.initrd.systemd.enable;
  scripts = blib.scriptDir ./. [
    "record-root.bash"
    "record.bash"
  ];
  # The store path of bash, not the initrd's /bin/bash (see ./btrfs.nix).
  bash = "${pkgs.bash}/bin/bash";
  args = root: [ kind ] ++ lib.optional (kind == "tmpfs") root;
in
# Conditions on boot.initrd.systemd.enable sit on the leaves they guard. Without an initrd
# (a container) nothing runs: the reader treats a missing record on kind none as skipped.
lib.mkIf config.boot.initrd.enable {
  boot.initrd = {
    systemd.services.blankslate-record = {
      inherit description;
      wantedBy = [ "initrd.target" ];
      # After / is mounted (whether or not that worked: the record says so), before
      # anything is mounted below it or the initrd moves on.
      after = [ "sysroot.mount" ];
      before = [
        "initrd-root-fs.target"
        "initrd-fs.target"
        "initrd-switch-root.target"
      ];
      unitConfig.DefaultDependencies = "no";
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${bash} ${
          utils.escapeSystemdExecArgs ([ "${scripts}/record-root.bash" ] ++ args "/sysroot")
        }";
      };
    };
    systemd.storePaths = [
      "${scripts}"
      bash
    ];

    # Scripted initrd: / is mounted on /mnt-root (stage-1-init.sh's targetRoot) by now.
    extraUtilsCommands = lib.mkIf (!systemdInitrd) ''
      copy_bin_and_libs ${pkgs.bash}/bin/bash
    '';
    postMountCommands = lib.mkIf (!systemdInitrd) (
      blib.inlineBashWith [ ./record.bash ] ./record-root.bash (args "/mnt-root")
    );
  };
}
