# NixOS VM test (flake check `vm-rollback`): the example layout's rollback, booted for real.
# It needs a machine that can build NixOS and run KVM (`nix build .#checks.x86_64-linux.vm-rollback`);
# the project's own CI cannot, so it is not run there.
#
# The VM's disk is formatted on the first boot by a test-only initrd unit (btrfs on the whole
# disk, label nixos, subvolumes root, persist and log, the read-only blank), then the real
# blankslate-rollback unit runs at every boot. The test writes to / and to a persisted path,
# reboots, and checks that only the persisted path survives and that the old root is kept.
{
  pkgs,
  blankslateModule,
}:
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
      users.mutableUsers = lib.mkForce true;

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
          umount /run/format
          udevadm trigger --settle /dev/vda
        '';
      };
    };

  testScript = ''
    machine.wait_for_unit("multi-user.target")
    machine.succeed("journalctl -b -u blankslate-rollback | grep -q 'blankslate-rollback: done'")
    machine.succeed("echo erased > /erased-at-boot")
    machine.succeed("echo kept > /var/lib/nixos/kept-across-boots")

    machine.shutdown()
    machine.start()
    machine.wait_for_unit("multi-user.target")

    machine.fail("test -e /erased-at-boot")
    machine.succeed("grep -q kept /var/lib/nixos/kept-across-boots")
    machine.succeed("mkdir -p /top && mount -t btrfs -o subvolid=5 /dev/vda /top")
    machine.succeed("grep -q erased /top/old_roots/*/erased-at-boot")
    machine.succeed("umount /top")
  '';
}
