# The boot attestation: `blankslate attest` once at every boot, after the persisted paths are
# mounted (local-fs.target). It fails the unit blankslate-attest, logs each failure at crit
# level and writes the node-exporter textfile <blankslate.audit.metricsDirectory>/
# blankslate-attest.prom (blankslate_reset_ok, blankslate_unbound_paths) when:
#   - the rollback's boot record (/run/blankslate/reset) does not say `reset` (on rollback
#     none a missing record is fine: a container without an initrd has no rollback);
#   - a persisted directory or file is not bind-mounted or linked from its source;
#   - /var/lib/nixos was not bound yet when NixOS's `users` activation script ran (noted by
#     the activation script blankslateNixosBound, ./attest-nixos-bound.bash);
#   - / is not root's with mode 0755 (impermanence #295).
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:
let
  cfg = config.blankslate;
  varLibNixosPersisted = lib.any (
    d: d.directory == "/var/lib/nixos"
  ) cfg._plan.persistence.directories;
  # systemd-sysusers and Userborn make the users from a unit and want the `users` activation
  # script empty (nixos/modules/system/boot/systemd/sysusers.nix,
  # services/system/userborn.nix): nothing to order before, nothing to note.
  usersScript =
    !(config.systemd.sysusers.enable or false) && !(config.services.userborn.enable or false);
  # The early bind of a system without an initrd (./server-defaults.nix), when there is one.
  bindEarly = !config.boot.initrd.enable && varLibNixosPersisted;
  noteNixosBound = varLibNixosPersisted && usersScript;
  # The plan of this very generation, in the store (a switch cannot make the unit read a
  # stale or edited /etc/blankslate/plan.json).
  planFile = pkgs.writeText "blankslate-plan.json" (builtins.toJSON cfg.plan);
in
{
  options.blankslate.attest.enable = lib.mkOption {
    type = lib.types.bool;
    default = true;
    description = ''
      Check every boot with `blankslate attest` (the unit blankslate-attest): the rollback
      reset /, every persisted path is bound or linked from its source, /var/lib/nixos was
      bound before the users' activation, and / is root's with mode 0755. A failure fails
      the unit, is logged at crit level (`journalctl -p crit`) and sets the node-exporter
      metrics blankslate_reset_ok and blankslate_unbound_paths.
    '';
  };

  config = lib.mkIf (cfg.enable && cfg.attest.enable) (
    lib.mkMerge [
      {
        systemd.services.blankslate-attest = {
          description = "blankslate: this boot reset / and binds what is persisted (blankslate attest)";
          wantedBy = [ "multi-user.target" ];
          # impermanence's bind mounts and persist-* file units are all before local-fs.target;
          # the activation (and its nixos-bound note) has run before any stage-2 unit.
          after = [ "local-fs.target" ];
          serviceConfig = {
            Type = "oneshot";
            # `systemctl status blankslate-attest` keeps showing this boot's result.
            RemainAfterExit = true;
            ExecStart = utils.escapeSystemdExecArgs (
              [
                (lib.getExe cfg.package)
                "attest"
                "--plan"
                "${planFile}"
              ]
              ++ lib.optionals (cfg.audit.metricsDirectory != null) [
                "--metrics-file"
                "${cfg.audit.metricsDirectory}/blankslate-attest.prom"
              ]
              ++ lib.optional (!usersScript) "--no-users-script"
            );
          };
        };
      }
      (lib.mkIf noteNixosBound {
        system.activationScripts.blankslateNixosBound = {
          deps = lib.optional bindEarly "blankslateVarLibNixos";
          text = ''
            PATH=${
              lib.makeBinPath [
                pkgs.coreutils
                pkgs.util-linux
              ]
            } ${pkgs.bash}/bin/bash ${./attest-nixos-bound.bash} /var/lib/nixos
          '';
        };
        # A list that merges with nixpkgs' definition of the script (users-groups.nix).
        system.activationScripts.users.deps = [ "blankslateNixosBound" ];
      })
    ]
  );
}
