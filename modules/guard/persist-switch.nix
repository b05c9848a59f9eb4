# The switch-time guard against the commonest way to lose data with impermanence: a path added
# to persistence is bind-mounted from its empty persistent copy, which hides what the live
# path holds, and the next reset erases it. ./persist-switch.bash (the file the tests run)
# compares the new generation's plan (etc/blankslate/plan.json in its toplevel) with the
# running system's and refuses, printing the `blankslate seed` command, when a newly
# persisted path holds data its persistent copy lacks; with blankslate.seedOnSwitch it runs
# that seed first. It reads plan.json with jq, as nixpkgs' own switchInhibitors check does.
#
# nixpkgs' system.preSwitchChecks (nixos/modules/system/activation/pre-switch-check.nix):
# attrsOf str, shell fragments joined into one script (system.preSwitchChecksScript) that
# switch-to-configuration runs before anything else, with the new toplevel and the action
# (switch, boot, test, check, dry-activate) as $1 and $2, for every action unless
# NIXOS_NO_CHECK=1 (pkgs/by-name/sw/switch-to-configuration-ng/src/src/main.rs:
# do_pre_switch_check, before the boot loader is installed); a fragment that fails stops the
# switch. Older nixpkgs passed only the toplevel. Without the option (nixpkgs before it), the
# guard is absent: `blankslate seed` is then the manual step the README describes.
#
# `boot` is checked like `switch`: it mounts nothing until the reboot, but that reboot's reset
# erases the live copy and the new generation then mounts the empty persistent copy.
{
  config,
  lib,
  options,
  pkgs,
  ...
}:
let
  cfg = config.blankslate;
  tools = lib.makeBinPath [
    pkgs.coreutils
    pkgs.findutils
    pkgs.jq
    cfg.package
  ];
in
{
  config = lib.optionalAttrs (options.system ? preSwitchChecks) {
    # nixpkgs defines its own entries (switchInhibitors); ours is a key of its own.
    system.preSwitchChecks.blankslate-persist = lib.mkIf cfg.enable ''
      PATH=${tools} ${pkgs.bash}/bin/bash ${./persist-switch.bash} ${lib.optionalString cfg.seedOnSwitch "--seed "}-- "''${1-}" "''${2-}"
    '';
  };
}
