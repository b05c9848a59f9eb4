# A model of the NixOS options the blankslate modules and hosts set, and of the
# nixpkgs definitions that meet ours on them. Written for these tests from
# reading the nixpkgs sources (each block names the file it mirrors); no
# nixpkgs code is copied. There is no freeform catch-all: a misspelled or
# removed option fails with `_module.check`. Options only impermanence sets
# (systemd.mounts) are
# declared with loose types, since none of ours meets them.
#
# pkgs is a set of stand-in derivations: names and store paths, no contents.
# tests/integration/test_initrd_path.py maps the initrd's packages to the
# programs they hold.
{ pkgs }:
{
  config,
  lib,
  utils,
  ...
}:
let
  inherit (lib) mkOption types;

  nonEmptyStr = types.addCheck types.str (s: builtins.match "[ \t\n]*" s == null);
  # A list of names becomes an attribute set of `true` (tasks/filesystems.nix, stage-1.nix).
  attrNamesToTrue = types.coercedTo (types.listOf types.str) (
    names: lib.genAttrs names (_: true)
  ) (types.attrsOf types.bool);
  enabled = set: lib.attrNames (lib.filterAttrs (_: on: on) set);
  loose = types.attrsOf types.anything;
  grub = config.boot.loader.grub;

  # nixos/lib/utils.nix: fsNeededForBoot.
  fsNeededForBoot = fs: fs.neededForBoot || lib.elem fs.mountPoint utils.pathsNeededForBoot;
  # nixos/modules/tasks/filesystems.nix: specialFSTypes.
  specialFSTypes = [
    "proc"
    "sysfs"
    "tmpfs"
    "ramfs"
    "devtmpfs"
    "devpts"
  ];

  # nixos/modules/tasks/filesystems.nix (coreFileSystemOpts, fileSystemOpts) and
  # nixos/modules/system/boot/stage-1.nix (neededForBoot).
  fileSystemModule =
    { name, config, ... }:
    {
      options = {
        mountPoint = mkOption {
          type = types.addCheck nonEmptyStr (s: builtins.match ".+/" s == null);
          default = name;
        };
        device = mkOption {
          type = types.nullOr nonEmptyStr;
          default = null;
        };
        label = mkOption {
          type = types.nullOr nonEmptyStr;
          default = null;
        };
        fsType = mkOption {
          type = nonEmptyStr;
          default = "auto";
        };
        options = mkOption {
          type = types.nonEmptyListOf nonEmptyStr;
          default = [ "defaults" ];
        };
        neededForBoot = mkOption {
          type = types.bool;
          default = false;
        };
        depends = mkOption {
          type = types.listOf nonEmptyStr;
          default = [ ];
        };
        noCheck = mkOption {
          type = types.bool;
          default = false;
        };
      };
      config = {
        # Special filesystems name their type as the device, at default priority.
        device = lib.mkMerge [
          (lib.mkIf (lib.elem config.fsType specialFSTypes) (lib.mkDefault config.fsType))
          (lib.mkIf (config.label != null) (lib.mkDefault "/dev/disk/by-label/${config.label}"))
        ];
        # Normal priority: a module's mkDefault list loses to this one.
        options = lib.mkIf (fsNeededForBoot config) [ "x-initrd.mount" ];
      };
    };

  # nixos/lib/systemd-unit-options.nix: serviceConfig is
  # `addCheck (attrsOf unitOption) checkService`, where checkService allows only systemd's
  # values for Type and Restart. The directives the scheduled audit sets have no per-key type
  # in nixpkgs; systemd reads them as below, and a value systemd would refuse (or ignore with
  # a warning) fails here too:
  #   MemoryMax=        systemd.resource-control(5): bytes with K/M/G/T, a percentage, infinity
  #   TimeoutStartSec=  systemd.service(5): a time span ("1h", "30min 10s") or seconds, infinity
  #   Nice=             systemd.exec(5): an integer from -20 to 19
  #   CPUWeight=        systemd.resource-control(5): a weight from 1 to 10000, or idle (the
  #                     cgroup's cpu.idle, systemd 250 on)
  #   IOSchedulingClass=   systemd.exec(5): realtime, best-effort or idle (nixpkgs'
  #   CPUSchedulingPolicy= nix-daemon.nix types its daemonIOSchedClass and daemonCPUSchedPolicy
  #                     as enums of these names): other, batch, idle, fifo or rr
  #   RemainAfterExit=  systemd.service(5): a boolean (the attestation's oneshot unit sets it;
  #                     unitOption renders a Nix bool as true/false)
  # The check sees each definition as written: a value under mkDefault or mkIf is read
  # through its wrapper.
  checkService =
    definition:
    let
      plain = value: if lib.isAttrs value && value ? content then plain value.content else value;
      settings = lib.mapAttrs (_: plain) definition;
      oneOf = name: values: !(settings ? ${name}) || lib.elem settings.${name} values;
      matches =
        name: re: !(settings ? ${name}) || builtins.match re (toString settings.${name}) != null;
    in
    oneOf "Type" [ "exec" "simple" "forking" "oneshot" "dbus" "notify" "notify-reload" "idle" ]
    && oneOf "Restart" [ "no" "on-success" "on-failure" "on-abnormal" "on-abort" "always" ]
    && matches "MemoryMax" "([0-9]+[KMGT]?|[0-9]+(\\.[0-9]+)?%|infinity)"
    && matches "TimeoutStartSec" "([0-9]+|([0-9]+ ?(us|ms|s|sec|min|m|h|hr|d|w|M|y) ?)+|infinity)"
    && (!(settings ? Nice) || (lib.isInt settings.Nice && settings.Nice >= -20 && settings.Nice <= 19))
    && (
      !(settings ? CPUWeight)
      || settings.CPUWeight == "idle"
      || (
        builtins.match "[0-9]+" (toString settings.CPUWeight) != null
        && lib.toInt (toString settings.CPUWeight) >= 1
        && lib.toInt (toString settings.CPUWeight) <= 10000
      )
    )
    && oneOf "IOSchedulingClass" [ "realtime" "best-effort" "idle" ]
    && oneOf "CPUSchedulingPolicy" [ "other" "batch" "idle" "fifo" "rr" ]
    && (!(settings ? RemainAfterExit) || lib.isBool settings.RemainAfterExit);

  # nixos/lib/systemd-unit-options.nix: the unit options our rollback units set.
  serviceModule = {
    options = {
      # nixos/lib/systemd-unit-options.nix: commonUnitOptions.enable
      enable = mkOption {
        type = types.bool;
        default = true;
      };
      description = mkOption {
        type = types.str;
        default = "";
      };
      wantedBy = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      requiredBy = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      requires = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      wants = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      after = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      before = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      conflicts = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      # commonUnitOptions.onFailure: what the README's alert hook sets on blankslate-audit.
      onFailure = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      unitConfig = mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
      serviceConfig = mkOption {
        type = types.addCheck (types.attrsOf types.anything) checkService;
        default = { };
      };
      environment = mkOption {
        type = types.attrsOf types.str;
        default = { };
      };
      # An initrd service's path becomes its whole PATH (nixos/lib/systemd-lib.nix).
      path = mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
      script = mkOption {
        type = types.lines;
        default = "";
      };
    };
  };

  # nixos/lib/systemd-unit-options.nix: stage2TimerOptions (commonUnitOptions + timerOptions),
  # the options the scheduled audit's timer sets; timerConfig is attrsOf unitOption there.
  timerModule = {
    options = {
      enable = mkOption {
        type = types.bool;
        default = true;
      };
      description = mkOption {
        type = types.singleLineStr;
        default = "";
      };
      wantedBy = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      timerConfig = mkOption {
        type = types.attrsOf types.anything;
        default = { };
      };
    };
  };

  # nixos/lib/systemd-types.nix: initrdStorePath (a string or package becomes { source }).
  storePathModule = {
    options = {
      source = mkOption { type = types.either types.str types.package; };
      target = mkOption {
        type = types.nullOr types.str;
        default = null;
      };
    };
  };

  # nixos/modules/tasks/filesystems.nix: makeFstabEntries, as the initrd's fstab gets it.
  fstabLine =
    fs:
    let
      # The journaling filesystems join this list unless boot.initrd.checkJournalingFS.
      skipCheck = [
        "none"
        "auto"
        "overlay"
        "iso9660"
        "bindfs"
        "udf"
        "btrfs"
        "zfs"
        "tmpfs"
        "bcachefs"
        "nfs"
        "nfs4"
        "nilfs2"
        "vboxsf"
        "squashfs"
        "glusterfs"
        "apfs"
        "9p"
        "cifs"
        "prl_fs"
        "vmhgfs"
      ];
      escape = builtins.replaceStrings [ " " "\t" ] [ "\\040" "\\011" ];
      pass =
        if fs.noCheck || fs.device == "none" || lib.elem fs.fsType skipCheck then
          "0"
        else if fs.mountPoint == "/" then
          "1"
        else
          "2";
    in
    "${escape fs.device} ${escape fs.mountPoint} ${fs.fsType} ${escape (lib.concatStringsSep "," fs.options)} 0 ${pass}";

  fileSystems = lib.attrValues config.fileSystems;
  initrd = config.boot.initrd;
in
{
  options = {
    # nixos/modules/misc/assertions.nix
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };

    # nixos/modules/config/locale.nix (what `blankslate new-host --time-zone` writes)
    time.timeZone = mkOption {
      type = types.nullOr types.str;
      default = null;
    };

    # nixos/modules/tasks/network-interfaces.nix, services/networking/firewall.nix
    networking.hostName = mkOption {
      type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
      default = "nixos";
    };
    networking.hostId = mkOption {
      type = types.nullOr (types.strMatching "[0-9a-f]{8}");
      default = null;
    };
    networking.firewall.enable = mkOption {
      type = types.bool;
      default = true;
    };
    # nixos/modules/tasks/network-interfaces.nix: DHCP on every interface without a static
    # address unless turned off, globally or per interface (useDHCP there is nullOr bool).
    networking.useDHCP = mkOption {
      type = types.bool;
      default = true;
    };
    networking.interfaces = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule {
          options.useDHCP = mkOption {
            type = types.nullOr types.bool;
            default = null;
          };
        }
      );
    };
    # nixos/modules/services/networking/dhcpcd.nix
    networking.dhcpcd.enable = mkOption {
      type = types.bool;
      default = true;
    };

    # nixos/modules/tasks/filesystems.nix, stage-1.nix
    fileSystems = mkOption {
      type = types.attrsOf (types.submodule fileSystemModule);
      default = { };
    };
    boot.supportedFilesystems = mkOption {
      type = attrNamesToTrue;
      default = { };
    };

    # nixos/modules/config/swap.nix
    swapDevices = mkOption {
      type = types.listOf (
        types.submodule {
          options.device = mkOption { type = types.str; };
          options.options = mkOption {
            type = types.nonEmptyListOf nonEmptyStr;
            default = [ "defaults" ];
          };
        }
      );
      default = [ ];
    };

    # nixos/modules/virtualisation/container-config.nix, system/boot/stage-1.nix
    boot.isContainer = mkOption {
      type = types.bool;
      default = false;
    };
    boot.initrd.enable = mkOption {
      type = types.bool;
      default = !config.boot.isContainer;
    };
    boot.initrd.supportedFilesystems = mkOption {
      type = attrNamesToTrue;
      default = { };
    };
    boot.initrd.postResumeCommands = mkOption {
      type = types.lines;
      default = "";
    };
    boot.initrd.postMountCommands = mkOption {
      type = types.lines;
      default = "";
    };
    boot.initrd.extraUtilsCommands = mkOption {
      type = types.lines;
      default = "";
    };

    # nixos/modules/system/boot/kernel.nix (the option's apply drops duplicates)
    boot.kernel.enable = mkOption {
      type = types.bool;
      default = true;
    };
    boot.initrd.availableKernelModules = mkOption {
      type = types.listOf types.str;
      default = [ ];
      apply = lib.unique;
    };

    # nixos/modules/system/boot/systemd/initrd.nix
    boot.initrd.systemd = {
      enable = mkOption {
        type = types.bool;
        default = false;
      };
      services = mkOption {
        type = types.attrsOf (types.submodule serviceModule);
        default = { };
      };
      # nixos/lib/systemd-types.nix: initrdStorePath, a list of single-line strings or
      # packages, each coerced to { source; } (initrdStorePathModule)
      storePaths = mkOption {
        type = types.listOf (
          types.coercedTo (types.oneOf [
            types.singleLineStr
            types.package
          ]) (source: { inherit source; }) (types.submodule storePathModule)
        );
        default = [ ];
      };
      initrdBin = mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
      extraBin = mkOption {
        type = types.attrsOf types.path;
        default = { };
      };
      suppressedUnits = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      mounts = mkOption {
        type = types.listOf loose;
        default = [ ];
      };
    };

    # nixos/modules/tasks/filesystems/zfs.nix
    boot.zfs.devNodes = mkOption {
      type = types.path;
      default = "/dev/disk/by-id";
    };
    boot.zfs.package = mkOption {
      type = types.package;
      default = pkgs.zfs;
    };

    # nixos/modules/system/boot/loader/systemd-boot/systemd-boot.nix, loader/efi.nix
    boot.loader.systemd-boot.enable = mkOption {
      type = types.bool;
      default = false;
    };
    boot.loader.efi.canTouchEfiVariables = mkOption {
      type = types.bool;
      default = false;
    };

    # nixos/modules/system/boot/loader/grub/grub.nix
    boot.loader.grub = {
      enable = mkOption {
        type = types.bool;
        default = !config.boot.isContainer;
      };
      device = mkOption {
        type = types.str;
        default = "";
      };
      devices = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      # Each entry: a boot path and the disks grub-install writes to (efiSysMountPoint and
      # efiBootloaderId, which nothing here sets, are left out).
      mirroredBoots = mkOption {
        default = [ ];
        type = types.listOf (
          types.submodule {
            options.path = mkOption { type = types.str; };
            options.devices = mkOption {
              type = types.listOf types.str;
              default = [ ];
            };
          }
        );
      };
      efiSupport = mkOption {
        type = types.bool;
        default = false;
      };
      efiInstallAsRemovable = mkOption {
        type = types.bool;
        default = false;
      };
    };

    # nixos/modules/services/networking/ssh/sshd.nix
    services.openssh = {
      enable = mkOption {
        type = types.bool;
        default = false;
      };
      allowSFTP = mkOption {
        type = types.bool;
        default = true;
      };
      hostKeys = mkOption {
        type = types.listOf types.attrs;
        default = [
          {
            type = "rsa";
            bits = 4096;
            path = "/etc/ssh/ssh_host_rsa_key";
          }
          {
            type = "ed25519";
            path = "/etc/ssh/ssh_host_ed25519_key";
          }
        ];
      };
      settings = mkOption {
        default = { };
        type = types.submodule {
          freeformType = types.attrsOf (
            types.nullOr (
              types.oneOf [
                types.bool
                types.int
                types.str
                (types.listOf types.str)
              ]
            )
          );
          options = {
            PasswordAuthentication = mkOption {
              type = types.bool;
              default = true;
            };
            KbdInteractiveAuthentication = mkOption {
              type = types.bool;
              default = true;
            };
            PermitRootLogin = mkOption {
              type = types.enum [
                "yes"
                "without-password"
                "prohibit-password"
                "forced-commands-only"
                "no"
              ];
              default = "prohibit-password";
            };
            X11Forwarding = mkOption {
              type = types.bool;
              default = false;
            };
          };
        };
      };
    };

    # nixos/modules/config/users-groups.nix
    users.mutableUsers = mkOption {
      type = types.bool;
      default = true;
    };
    users.users = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule (
          { name, config, ... }:
          {
            options = {
              isNormalUser = mkOption {
                type = types.bool;
                default = false;
              };
              isSystemUser = mkOption {
                type = types.bool;
                default = false;
              };
              extraGroups = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
              hashedPasswordFile = mkOption {
                type = types.nullOr types.str;
                default = null;
              };
              openssh.authorizedKeys.keys = mkOption {
                type = types.listOf types.singleLineStr;
                default = [ ];
              };
              uid = mkOption {
                type = types.nullOr types.int;
                default = null;
              };
              group = mkOption {
                type = types.str;
                default = "";
              };
              home = mkOption {
                type = types.str;
                default = "/var/empty";
              };
              homeMode = mkOption {
                type = types.strMatching "[0-7]{1,5}";
                default = "700";
              };
            };
            # A normal user lives in /home/<name>, in group users.
            config = lib.mkIf config.isNormalUser {
              home = lib.mkDefault "/home/${name}";
              group = lib.mkDefault "users";
            };
          }
        )
      );
    };
    users.groups = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule {
          options.gid = mkOption {
            type = types.nullOr types.int;
            default = null;
          };
        }
      );
    };

    # nixos/modules/security/sudo.nix
    security.sudo.enable = mkOption {
      type = types.bool;
      default = true;
    };
    security.sudo.extraConfig = mkOption {
      type = types.lines;
      default = "";
    };
    security.sudo.extraRules = mkOption {
      default = [ ];
      type = types.listOf (
        types.submodule {
          options = {
            users = mkOption {
              type = types.listOf (types.either types.str types.int);
              default = [ ];
            };
            groups = mkOption {
              type = types.listOf (types.either types.str types.int);
              default = [ ];
            };
            host = mkOption {
              type = types.str;
              default = "ALL";
            };
            runAs = mkOption {
              type = types.str;
              default = "ALL:ALL";
            };
            commands = mkOption {
              type = types.listOf (
                types.either types.str (
                  types.submodule {
                    options = {
                      command = mkOption { type = types.str; };
                      options = mkOption {
                        type = types.listOf (
                          types.enum [
                            "NOPASSWD"
                            "PASSWD"
                            "NOEXEC"
                            "EXEC"
                            "SETENV"
                            "NOSETENV"
                            "LOG_INPUT"
                            "NOLOG_INPUT"
                            "LOG_OUTPUT"
                            "NOLOG_OUTPUT"
                          ]
                        );
                        default = [ ];
                      };
                    };
                  }
                )
              );
            };
          };
        }
      );
    };

    # nixos/modules/config/nix.nix: settings is a freeform submodule; trusted-users one of its
    # declared options (nixpkgs itself defines [ "root" ], below).
    nix.settings = mkOption {
      default = { };
      type = types.submodule {
        freeformType = types.attrsOf types.anything;
        options.trusted-users = mkOption { type = types.listOf types.str; };
      };
    };

    # nixos/modules/system/etc/etc.nix
    environment.etc = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule {
          options.text = mkOption {
            type = types.nullOr types.lines;
            default = null;
          };
          options.source = mkOption {
            type = types.nullOr types.path;
            default = null;
          };
        }
      );
    };

    # nixos/modules/config/system-path.nix
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };

    # nixos/modules/misc/nixpkgs.nix, misc/version.nix
    nixpkgs.hostPlatform = mkOption { type = types.either types.str types.attrs; };
    system.stateVersion = mkOption { type = types.str; };

    # nixos/modules/system/boot/systemd.nix: stage 2's units, the same unit options as the
    # initrd's (nixos/lib/systemd-unit-options.nix); ours is the password guard, impermanence's
    # the persist-* file units.
    systemd.services = mkOption {
      type = types.attrsOf (types.submodule serviceModule);
      default = { };
    };
    # nixos/modules/system/boot/systemd.nix: systemd.timers (attrsOf stage2TimerOptions).
    systemd.timers = mkOption {
      type = types.attrsOf (types.submodule timerModule);
      default = { };
    };
    # Only impermanence sets this (nixos.nix); loosely typed on purpose.
    systemd.mounts = mkOption {
      type = types.listOf loose;
      default = [ ];
    };
    # nixos/modules/system/activation/activation-script.nix: a script is a string (no
    # dependencies) or { deps, text, supportsDryActivation }; deps name the scripts that run
    # before it, and a list merges with every module's.
    system.activationScripts = mkOption {
      default = { };
      type = types.attrsOf (
        types.either types.str (
          types.submodule {
            options = {
              deps = mkOption {
                type = types.listOf types.str;
                default = [ ];
              };
              text = mkOption { type = types.lines; };
              supportsDryActivation = mkOption {
                type = types.bool;
                default = false;
              };
            };
          }
        )
      );
    };
    # nixos/modules/system/boot/systemd/tmpfiles.nix
    systemd.tmpfiles.rules = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };

    # nixos/modules/system/activation/pre-switch-check.nix: shell fragments by name, joined
    # into system.preSwitchChecksScript, which switch-to-configuration runs before a switch
    # with the new toplevel and the action as $1 and $2 (ours: the persist guard).
    system.preSwitchChecks = mkOption {
      type = types.attrsOf types.str;
      default = { };
    };

    # Computed by the model, read by the tests: what the initrd's fstab holds
    # (nixos/modules/tasks/filesystems.nix: initrdFstab).
    system.build.initrdFstab = mkOption {
      type = types.listOf types.str;
      readOnly = true;
    };
  };

  config = lib.mkMerge [
    {
      # nixos/modules/tasks/filesystems.nix and stage-1.nix
      boot.supportedFilesystems = map (fs: fs.fsType) fileSystems;
      boot.initrd.supportedFilesystems = map (fs: fs.fsType) (lib.filter fsNeededForBoot fileSystems);
      system.build.initrdFstab = map fstabLine (lib.filter fsNeededForBoot fileSystems);

      # nixos/modules/config/nix.nix (nix.enable defaults to true): root is trusted.
      nix.settings.trusted-users = [ "root" ];

      # nixos/modules/config/users-groups.nix: root is always a user, in group root.
      users.users.root = {
        uid = 0;
        home = "/root";
        group = "root";
      };
    }

    # nixos/modules/services/networking/dhcpcd.nix: with networking.dhcpcd.enable and DHCP on
    # (networking.useDHCP, or an interface's useDHCP), the dhcpcd service runs as user and
    # group dhcpcd with StateDirectory "dhcpcd" (its DUID and leases in /var/lib/dhcpcd).
    (lib.mkIf
      (
        config.networking.dhcpcd.enable
        && (
          config.networking.useDHCP
          || lib.any (i: i.useDHCP == true) (lib.attrValues config.networking.interfaces)
        )
      )
      {
        systemd.services.dhcpcd = {
          description = "DHCP Client";
          wantedBy = [ "multi-user.target" ];
          serviceConfig = {
            Type = "forking";
            User = "dhcpcd";
            Group = "dhcpcd";
            StateDirectory = "dhcpcd";
            RuntimeDirectory = "dhcpcd";
          };
        };
        users.users.dhcpcd = {
          isSystemUser = true;
          group = "dhcpcd";
        };
        users.groups.dhcpcd = { };
      }
    )

    # nixos/modules/config/users-groups.nix: the activation script that writes /etc/passwd and
    # the uid/gid map in /var/lib/nixos (update-users-groups.pl), a dry-activation-capable
    # script (here its name; the text is nixpkgs').
    {
      system.activationScripts.users = {
        supportsDryActivation = true;
        text = "# nixpkgs' update-users-groups.pl";
      };
    }

    # nixos/modules/system/activation/switchable-system.nix: with system.switch.enable (on by
    # default), nixpkgs' own check, which refuses a switch when the switch inhibitors changed
    # (here its name; the fragment's text is nixpkgs').
    {
      system.preSwitchChecks.switchInhibitors = "# nixpkgs' switch inhibitors check";
    }

    # nixos/modules/config/system-path.nix: corePackages ++ defaultPackages, at normal priority
    # (both are options there, with lists of a few dozen packages; here some of them).
    {
      environment.systemPackages = [
        pkgs.bashInteractive
        pkgs.coreutils
        pkgs.findutils
        pkgs.mkpasswd
        pkgs.util-linux
      ];
    }

    # nixos/modules/system/boot/systemd/initrd.nix
    (lib.mkIf (initrd.enable && initrd.systemd.enable) {
      boot.initrd.systemd.initrdBin = [
        pkgs.bashInteractive
        pkgs.coreutils
        pkgs.kmod
        pkgs.systemd
      ];
      # its own storePaths that meet ours: bash's bin directory ("some tools like xfs still
      # want the sh symlink"), not bash itself by name (the model has no runtimeShell)
      boot.initrd.systemd.storePaths = [ "${pkgs.bash}/bin" ];
      boot.initrd.systemd.extraBin = {
        less = "${pkgs.less}/bin/less";
        mount = "${pkgs.util-linux}/bin/mount";
        umount = "${pkgs.util-linux}/bin/umount";
        fsck = "${pkgs.util-linux}/bin/fsck";
      };
      assertions = [
        {
          assertion = lib.any (fs: fs.mountPoint == "/") fileSystems;
          message = "The ‘fileSystems’ option does not specify your root file system.";
        }
        {
          assertion = initrd.postResumeCommands == "" && initrd.extraUtilsCommands == "";
          message = "systemd stage 1 does not support postResumeCommands or extraUtilsCommands.";
        }
      ];
    })

    # nixos/modules/system/boot/kernel.nix: the initrd's default drivers, at normal priority
    # (SATA/PATA, NVMe, SCSI disks, MMC, USB keyboards; on x86 the PS/2 keyboard and the RTC).
    # No virtio driver: a VM's /dev/vda needs virtio_pci and virtio_blk, which
    # nixos-generate-config writes into hardware-configuration.nix (the host's hardware.nix).
    (lib.mkIf config.boot.kernel.enable {
      boot.initrd.availableKernelModules = [
        "ahci"
        "sata_nv"
        "sata_via"
        "sata_sis"
        "sata_uli"
        "ata_piix"
        "pata_marvell"
        "nvme"
        "sd_mod"
        "sr_mod"
        "mmc_block"
        "uhci_hcd"
        "ehci_hcd"
        "ehci_pci"
        "ohci_hcd"
        "ohci_pci"
        "xhci_hcd"
        "xhci_pci"
        "usbhid"
        "hid_generic"
        "hid_lenovo"
        "hid_apple"
        "hid_roccat"
        "hid_logitech_hidpp"
        "hid_logitech_dj"
        "hid_microsoft"
        "hid_cherry"
        "hid_corsair"
      ]
      # pkgs.stdenv.hostPlatform.isx86 there; the stand-in pkgs name only the system.
      ++ lib.optionals (lib.elem pkgs.stdenv.hostPlatform.system [ "x86_64-linux" "i686-linux" ]) [
        "pcips2"
        "atkbd"
        "i8042"
        "rtc_cmos"
      ];
    })

    # nixos/modules/system/boot/loader/systemd-boot/systemd-boot.nix: GRUB, on by default,
    # steps aside.
    (lib.mkIf config.boot.loader.systemd-boot.enable {
      boot.loader.grub.enable = lib.mkDefault false;
    })

    # nixos/modules/system/boot/loader/grub/grub.nix: devices is [ device ] when device is
    # set (a definition at normal priority, so a module's own devices list concatenates with
    # it); mirroredBoots is one boot path, /boot, with those devices; and the assertions that
    # meet the options blankslate sets. The duplicate check counts every device of every
    # mirroredBoots entry (bootDeviceCounters there), "nodev" aside, and is skipped with
    # efiSupport.
    (lib.mkIf config.boot.loader.grub.enable {
      boot.loader.grub.devices = lib.mkIf (grub.device != "") [ grub.device ];
      boot.loader.grub.mirroredBoots = lib.mkIf (grub.devices != [ ]) [
        {
          path = "/boot";
          inherit (grub) devices;
        }
      ];
      assertions = [
        {
          assertion = grub.mirroredBoots != [ ];
          message = "You must set the option ‘boot.loader.grub.devices’ or 'boot.loader.grub.mirroredBoots' to make the system bootable.";
        }
        {
          assertion =
            let
              counted = lib.filter (d: d != "nodev") (lib.concatMap (b: b.devices) grub.mirroredBoots);
            in
            grub.efiSupport || lib.length counted == lib.length (lib.unique counted);
          message = "You cannot have duplicated devices in mirroredBoots";
        }
        {
          assertion = grub.efiInstallAsRemovable -> grub.efiSupport;
          message = "If you wish to to use boot.loader.grub.efiInstallAsRemovable, then turn on boot.loader.grub.efiSupport";
        }
        {
          assertion = grub.efiInstallAsRemovable -> !config.boot.loader.efi.canTouchEfiVariables;
          message = "If you wish to to use boot.loader.grub.efiInstallAsRemovable, then turn off boot.loader.efi.canTouchEfiVariables";
        }
      ];
    })

    # nixos/modules/tasks/filesystems/btrfs.nix
    (lib.mkIf (lib.elem "btrfs" (enabled initrd.supportedFilesystems) && initrd.systemd.enable) {
      boot.initrd.systemd.initrdBin = [ pkgs.btrfs-progs ];
    })

    # nixos/modules/tasks/filesystems/zfs.nix
    (lib.mkIf (lib.elem "zfs" (enabled initrd.supportedFilesystems) && initrd.systemd.enable) {
      boot.initrd.systemd.extraBin = {
        zpool = "${config.boot.zfs.package}/sbin/zpool";
        zfs = "${config.boot.zfs.package}/sbin/zfs";
        awk = "${pkgs.gawk}/bin/awk";
      };
    })
  ];
}
