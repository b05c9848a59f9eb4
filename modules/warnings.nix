# Warnings for state that nothing keeps, as impermanence warns for its own
# mistakes: a normal user's home, and a service's StateDirectory under
# /var/lib. Warnings, not assertions: the loss is the user's call.
{ config, lib, ... }:
let
  cfg = config.blankslate;
  blib = import ./lib.nix { inherit lib; };
  persisted = cfg._plan.persistence;

  # Trees that survive a reboot: persisted directories, persistence roots, and
  # every filesystem mounted elsewhere than on / (the one that is reset).
  keptTrees =
    map (d: d.directory) persisted.directories
    ++ persisted.roots
    ++ [ cfg.persistPath ]
    ++ lib.filter (m: m != "/") (map (fs: fs.mountPoint) (lib.attrValues config.fileSystems));
  keptFiles = map (f: f.file) persisted.files;
  isKept = path: lib.any (tree: blib.isUnder tree path) keptTrees || lib.elem path keptFiles;
  holdsKept = path: lib.any (blib.isUnder path) (keptTrees ++ keptFiles);

  homeWarnings = lib.mapAttrsToList (
    name: user:
    lib.optional (user.isNormalUser && !holdsKept user.home && !isKept user.home)
      "blankslate: user ${name}'s home ${user.home} is erased at every boot: persist what it holds (blankslate.users.${name}.persist, or environment.persistence.<root>.users.${name}) or put ${user.home} on a filesystem of its own"
  ) config.users.users;

  # NixOS creates a new user's home (users-groups.nix, createHome) in the activation script,
  # before stage 2 mounts the filesystems the initrd did not (nixpkgs#6481): on a filesystem
  # of its own that is not neededForBoot, the home lands on the root the next boot erases and
  # the mount then hides it. The layouts blankslate makes mount /home in the initrd.
  lateHomeWarnings = lib.mapAttrsToList (
    name: user:
    let
      mountpoint = blib.mountpointOf (blib.mountpointsOf config.fileSystems) user.home;
      fs = blib.fileSystemAt config.fileSystems mountpoint;
    in
    lib.optional (
      user.isNormalUser && mountpoint != null && mountpoint != "/" && !(fs.neededForBoot or true)
    ) "blankslate: user ${name}'s home ${user.home} is on ${mountpoint}, which is mounted after NixOS creates a new user's home (nixpkgs#6481): set fileSystems.\"${mountpoint}\".neededForBoot = true"
  ) config.users.users;

  # StateDirectory= takes space-separated names, or a list of them; "a:b" makes b a link to a.
  stateDirectories =
    value:
    map (entry: lib.head (lib.splitString ":" entry)) (
      lib.concatMap (entry: lib.filter (s: s != "") (lib.splitString " " entry)) (lib.toList value)
    );
  # DynamicUser= services keep their state in /var/lib/private/<name> (/var/lib/<name> is
  # systemd's link to it); /var/lib/private must stay 0700 (impermanence #93, #254).
  isDynamicUser = service: lib.elem (service.serviceConfig.DynamicUser or false) [ true "yes" "true" "on" "1" ];
  serviceWarnings = lib.mapAttrsToList (
    name: service:
    let
      lost = lib.filter (
        directory: !isKept "/var/lib/${directory}" && !isKept "/var/lib/private/${directory}"
      ) (stateDirectories (service.serviceConfig.StateDirectory or [ ]));
      dynamic = isDynamicUser service;
      where = d: if dynamic then "/var/lib/private/${d}" else "/var/lib/${d}";
    in
    lib.optional (service.enable && lost != [ ])
      "blankslate: service ${name} keeps its state in ${lib.concatMapStringsSep ", " where lost} (StateDirectory${
        lib.optionalString dynamic " with DynamicUser"
      }), which nothing persists: the next boot erases it${
        lib.optionalString dynamic "; persist ${lib.concatMapStringsSep ", " where lost} (its parent /var/lib/private stays 0700)"
      }"
  ) config.systemd.services;

  # The example hosts' placeholder key (scripts/blankslate/lockout.py checks the same mark):
  # a template evaluates, and install, extra-files and doctor refuse it.
  placeholderWarnings = lib.mapAttrsToList (
    name: admin:
    lib.optional (
      admin.authorizedKeys != [ ] && lib.all (lib.hasInfix "PlaceholderReplaceMe") admin.authorizedKeys
    ) "blankslate: blankslate.users.${name}.authorizedKeys holds only the example's placeholder key: put your own public key there before installing, or ${name} cannot log in"
  ) cfg.users;
in
{
  config = lib.mkIf cfg.enable {
    warnings = lib.concatLists (
      homeWarnings ++ lateHomeWarnings ++ serviceWarnings ++ placeholderWarnings
    );
  };
}
