# The scheduled audit: `blankslate diff` after every boot and on blankslate.audit.schedule,
# so that a service writing to an unpersisted path is noticed before a reboot erases its data.
# Each run writes the JSON report to /var/lib/blankslate/audit.json (persisted unless
# blankslate.audit.persistReport is false) and the node-exporter textfile
# <metricsDirectory>/blankslate.prom, and fails the unit when something would be lost: an
# OnFailure= hook (systemd.services.blankslate-audit.onFailure) or `systemctl --failed` sees it.
{
  config,
  lib,
  utils,
  ...
}:
let
  inherit (lib) mkOption types;
  btypes = (import ./lib.nix { inherit lib; }).types;
  cfg = config.blankslate;
  stateDirectory = "/var/lib/blankslate";
  reportFile = "${stateDirectory}/audit.json";
  metricsFile = "${cfg.audit.metricsDirectory}/blankslate.prom";
in
{
  options.blankslate.audit = {
    schedule = mkOption {
      type = types.nullOr (types.strMatching "[^\n]+");
      default = "daily";
      example = "hourly";
      description = ''
        When `blankslate diff` runs (systemd OnCalendar, see systemd.time(7)), besides 15
        minutes after every boot; null: no scheduled audit. The unit blankslate-audit fails
        when something would be lost at the next boot.
      '';
    };
    metricsDirectory = mkOption {
      type = types.nullOr btypes.absolutePath;
      default = "/var/lib/prometheus-node-exporter-text-files";
      description = ''
        Where each audit writes blankslate.prom (blankslate_lost_entries,
        blankslate_lost_bytes, blankslate_audit_timestamp_seconds), and where the boot
        attestation writes blankslate-attest.prom (blankslate_reset_ok,
        blankslate_unbound_paths), for node-exporter's textfile collector: pass it the same
        directory
        (services.prometheus.exporters.node.extraFlags =
        [ "--collector.textfile.directory=DIR" ]). null: no metrics file.
      '';
    };
    persistReport = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Persist ${stateDirectory}, where each audit writes its JSON report (audit.json), so
        the last report before a reboot survives it.
      '';
    };
  };

  config = lib.mkIf (cfg.enable && cfg.audit.schedule != null) (
    lib.mkMerge [
      {
        systemd.services.blankslate-audit = {
          description = "blankslate: what the next boot will erase (blankslate diff)";
          # persistPath and the bind mounts of what is persisted are up by then.
          after = [ "local-fs.target" ];
          serviceConfig = {
            Type = "oneshot";
            ExecStart = utils.escapeSystemdExecArgs (
              [
                (lib.getExe cfg.package)
                "diff"
                "--fail-on-lost"
                "--report"
                reportFile
              ]
              ++ lib.optionals (cfg.audit.metricsDirectory != null) [
                "--metrics"
                metricsFile
              ]
            );
            StateDirectory = "blankslate";
            StateDirectoryMode = "0700";
            # Bounded, and out of the way: whatever users put on the root, the audit takes
            # at most this much memory and time, and yields the CPU and the disks to
            # everything else. Past TimeoutStartSec= systemd sends SIGTERM: the audit lets go
            # of what it mounted, writes blankslate_audit_complete 0 and
            # blankslate_audit_terminated 1, and exits 2 (the unit fails); killed past
            # MemoryMax=, it leaves its metrics file at blankslate_audit_complete 0. Nice=
            # ranks processes only within the unit's own cgroup once the cpu controller is
            # on; CPUWeight=idle puts the whole unit below every other cgroup. Each is a
            # scalar a host may replace.
            MemoryMax = lib.mkDefault "2G";
            TimeoutStartSec = lib.mkDefault "1h";
            Nice = lib.mkDefault 19;
            CPUWeight = lib.mkDefault "idle";
            CPUSchedulingPolicy = lib.mkDefault "batch";
            IOSchedulingClass = lib.mkDefault "idle";
          };
        };
        systemd.timers.blankslate-audit = {
          description = "blankslate: scheduled audit of what the next boot will erase";
          wantedBy = [ "timers.target" ];
          timerConfig = {
            OnBootSec = "15min"; # after the services of the boot have written their state
            OnCalendar = cfg.audit.schedule;
          };
        };
      }
      (lib.mkIf cfg.audit.persistReport {
        blankslate.persistence.directories = lib.mkAfter [
          {
            directory = stateDirectory;
            mode = "0700";
          }
        ];
      })
    ]
  );
}
