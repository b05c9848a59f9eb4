# NixOS VM test (flake check `vm-rollback`): the example layout's rollback, booted for real.
# It needs a machine that can build NixOS and run KVM (`nix build .#checks.x86_64-linux.vm-rollback`);
# the project's own CI cannot, so it is not run there.
#
# The VM's disk is formatted on the first boot by a test-only initrd unit (btrfs on the whole
# disk, label nixos, subvolumes root, persist and log, the read-only blank, and the admin's
# password file), then the real blankslate-rollback unit runs at every boot. The test writes
# to / and to persisted paths, reboots, and checks what users lose in real life:
#   - only the persisted paths survive (one in a home), and the old root is kept;
#   - the same machine-id after the reboot, and `journalctl -b -1` shows the first boot;
#   - the immutable admin logs in on the console with the password of the file, and sudo works;
#   - the boot attestation (blankslate-attest) passes, and fails once the blank snapshot is
#     removed (the rollback cannot reset), with a crit line and blankslate_reset_ok 0.
{
  pkgs,
  blankslateModule,
}:
let
  # The admin's password and its SHA-512 crypt hash (openssl passwd -6), test only.
  password = "correct horse";
  passwordHash = "$6$blankslatevmtest$vXpAkxAJZuMl3BoUQBqfhX09.Z0y4wS196lc/hWYumDKhoDTl.jbga703/SHuKFcPcEi/dp3G/WoA8eAiPVoq.";
  metrics = "/var/lib/prometheus-node-exporter-text-files/blankslate-attest.prom";
in
pkgs.testers.runNixOSTest {
  name = "blankslate-rollback";

  nodes.machine =
    { config, lib, ... }:
    {
      imports = [ blankslateModule ];

      blankslate = {
        enable = true;
        rollback = "btrfs";
        disk = {
          device = "/dev/vda";
          swapSize = "0";
        };
        # The store comes from the host through the test framework; no nix subvolume.
        btrfs.subvolumes = [
          {
            name = "root";
            mountpoint = "/";
          }
          {
            name = "persist";
            mountpoint = "/persist";
          }
          {
            name = "log";
            mountpoint = "/var/log";
          }
        ];
      };
      # An immutable admin (users.mutableUsers stays false): the password comes from
      # /persist/passwords/admin, which the format unit writes; a real key, no placeholder.
      blankslate.users.admin = {
        authorizedKeys = [
          "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF+c25iC5V+fabDZgfLqm8kDaIRGphRxac/3EGV7YY/Z vm-test"
        ];
        # A path in a home: /home/admin/notes, kept in /persist.
        persist.directories = [ "notes" ];
      };

      # The framework replaces fileSystems with virtualisation.fileSystems: give it the plan's
      # mounts (not the ESP: the VM boots its kernel directly).
      virtualisation.useDefaultFilesystems = false;
      virtualisation.fileSystems = lib.listToAttrs (
        map (m: lib.nameValuePair m.mountPoint { inherit (m) device fsType options neededForBoot; }) (
          lib.filter (m: m.fsType == "btrfs") config.blankslate._plan.mounts
        )
      );

      # Test only: make the layout `blankslate install` would make, once, on a blank disk.
      boot.initrd.systemd.services.blankslate-test-format = {
        wantedBy = [ "initrd.target" ];
        requires = [ "dev-vda.device" ];
        after = [ "dev-vda.device" ];
        before = [ "blankslate-rollback.service" ];
        unitConfig.DefaultDependencies = "no";
        serviceConfig.Type = "oneshot";
        script = ''
          if btrfs filesystem show /dev/vda >/dev/null 2>&1; then exit 0; fi
          mkfs.btrfs -L nixos /dev/vda
          mkdir -p /run/format && mount -t btrfs /dev/vda /run/format
          for name in root persist log; do btrfs subvolume create /run/format/$name; done
          btrfs subvolume snapshot -r /run/format/root /run/format/root-blank
          mkdir -m 0700 /run/format/persist/passwords
          (umask 077 && printf '%s\n' '${passwordHash}' > /run/format/persist/passwords/admin)
          umount /run/format
          udevadm trigger --settle /dev/vda
        '';
      };
    };

  testScript = ''
    machine.wait_for_unit("multi-user.target")
    machine.succeed("journalctl -b -u blankslate-rollback | grep -q 'blankslate-rollback: done'")
    # The boot attestation passed: the reset happened, every persisted path is bound.
    machine.wait_for_unit("blankslate-attest.service")
    machine.succeed("grep -qx 'blankslate_reset_ok 1' ${metrics}")
    machine.succeed("grep -qx 'blankslate_unbound_paths 0' ${metrics}")
    machine.succeed("echo erased > /erased-at-boot")
    machine.succeed("echo kept > /var/lib/nixos/kept-across-boots")
    machine.succeed("echo kept > /home/admin/notes/kept-in-a-home")
    machine.succeed("echo blankslate-first-boot | systemd-cat -t blankslate-vm-test")
    machine_id = machine.succeed("cat /etc/machine-id").strip()

    machine.shutdown()
    machine.start()
    machine.wait_for_unit("multi-user.target")

    machine.fail("test -e /erased-at-boot")
    machine.succeed("grep -q kept /var/lib/nixos/kept-across-boots")
    machine.succeed("grep -q kept /home/admin/notes/kept-in-a-home")
    machine.succeed("mkdir -p /top && mount -t btrfs -o subvolid=5 /dev/vda /top")
    machine.succeed("grep -q erased /top/old_roots/*/erased-at-boot")
    machine.succeed("umount /top")
    # What users lose in real life: the machine's identity and the last boot's journal.
    assert machine.succeed("cat /etc/machine-id").strip() == machine_id, "machine-id changed"
    machine.succeed("journalctl -b -1 -t blankslate-vm-test | grep -q blankslate-first-boot")
    machine.wait_for_unit("blankslate-attest.service")
    machine.succeed("grep -qx 'blankslate_reset_ok 1' ${metrics}")

    # The immutable admin logs in on the console with the file's password, and sudo works.
    machine.wait_for_unit("getty@tty1.service")
    machine.wait_until_tty_matches("1", "login: ")
    machine.send_chars("admin\n")
    machine.wait_until_tty_matches("1", "Password: ")
    machine.send_chars("${password}\n")
    machine.wait_until_succeeds("pgrep -u admin -x bash")
    machine.send_chars("echo '${password}' | sudo -S sh -c 'id -u > /run/sudo-worked'\n")
    machine.wait_for_file("/run/sudo-worked")
    machine.succeed("grep -qx 0 /run/sudo-worked")

    # Without the blank snapshot the rollback cannot reset: the attestation fails, visibly.
    machine.succeed("mkdir -p /top && mount -t btrfs -o subvolid=5 /dev/vda /top")
    machine.succeed("btrfs subvolume delete /top/root-blank")
    machine.succeed("umount /top")
    machine.shutdown()
    machine.start()
    machine.wait_for_unit("multi-user.target")
    machine.wait_until_succeeds("systemctl is-failed blankslate-attest.service")
    machine.succeed("journalctl -b -p crit -u blankslate-attest | grep -q 'btrfs: failed'")
    machine.succeed("grep -qx 'blankslate_reset_ok 0' ${metrics}")
  '';
}
