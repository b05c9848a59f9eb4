# Server defaults that take more than a persisted path (docs/persistence.md, "Server defaults",
# and docs/vpsfree.md):
#   - with / on tmpfs, Nix builds under /nix, not in /tmp on the root's RAM (NixOS/nix#11477);
#   - without an initrd (a vpsFree.cz container), a persisted /var/lib/nixos is bound before
#     NixOS's `users` activation script writes the uid/gid map into it (vpsadminos #81, #86).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.blankslate;
  onTmpfs = cfg.rollback == "tmpfs";

  # The plan's entry for /var/lib/nixos (serverDefaults or the host's own list), or null.
  varLibNixos = lib.findFirst (
    d: d.directory == "/var/lib/nixos"
  ) null cfg._plan.persistence.directories;
  bindEarly = !config.boot.initrd.enable && varLibNixos != null;
  # systemd-sysusers and Userborn make the users from a unit instead, and want the `users`
  # activation script empty (nixos/modules/system/boot/systemd/sysusers.nix,
  # services/system/userborn.nix): no `users` script to order.
  usersScript =
    !(config.systemd.sysusers.enable or false) && !(config.services.userborn.enable or false);
  source = "${lib.removeSuffix "/" varLibNixos.root}/var/lib/nixos";

  # The roots that keep a path below /var/lib/private (DynamicUser services' state). impermanence
  # makes a missing parent with its defaults (0755), which systemd refuses there (impermanence
  # #93, #254); the plan and `blankslate seed` say 0700, and tmpfiles sets it at every boot.
  persisted = cfg._plan.persistence;
  privateRoots = lib.unique (
    map (e: lib.removeSuffix "/" e.root) (
      lib.filter (e: lib.hasPrefix "/var/lib/private/" (e.directory or e.file)) (
        persisted.directories ++ persisted.files
      )
    )
  );
in
{
  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      # nixos/modules/config/nix.nix: nix.settings is nix.conf, freeform; build-dir (Nix 2.22 and
      # later) is where the daemon makes the builds' temporary directories, TMPDIR (/tmp) when
      # unset before Nix 2.30, /nix/var/nix/builds since. /tmp on a tmpfs root is RAM.
      (lib.mkIf onTmpfs {
        nix.settings.build-dir = lib.mkDefault "/nix/var/nix/builds";
        # nixos/modules/system/boot/systemd/tmpfiles.nix: made at every boot if missing.
        systemd.tmpfiles.rules = [ "d ${config.nix.settings.build-dir} 0755 root root -" ];
      })
      # nixos/modules/system/boot/systemd/tmpfiles.nix; "z" adjusts an existing path's mode and
      # owner (tmpfiles.d(5)), without making it.
      (lib.mkIf (privateRoots != [ ]) {
        systemd.tmpfiles.rules = map (root: "z ${root}/var/lib/private 0700 root root -") (
          [ "" ] ++ privateRoots
        );
      })
      (lib.mkIf bindEarly {
        system.activationScripts.blankslateVarLibNixos = {
          text = ''
            PATH=${
              lib.makeBinPath [
                pkgs.coreutils
                pkgs.util-linux
              ]
            } ${pkgs.bash}/bin/bash ${./early-bind.bash} ${lib.escapeShellArgs [ source "/var/lib/nixos" ]}
          '';
        };
        # A list that merges with nixpkgs' definition of the script (users-groups.nix).
        system.activationScripts.users = lib.mkIf usersScript { deps = [ "blankslateVarLibNixos" ]; };
      })
    ]
  );
}
