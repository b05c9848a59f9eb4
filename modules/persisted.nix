# The plan's persistence section, read from the evaluated
# environment.persistence the way impermanence reads it (nixos.nix,
# allPersistentStoragePaths): every enabled root, its paths and its users'
# paths, each with absolute paths, the root that keeps it, and the
# directories above it in the order and with the owner and mode impermanence
# creates them (create-directories.bash: a directory that exists is left
# alone, so the first declaration wins).
#
# nix-community/preservation's preserveAt maps onto the same plan: its roots,
# its paths (users' ones already absolute), owner and mode; missing parents
# root's and 0755 (tmpfiles' default), a configured parent as declared, a
# user's home as users.users.<name> gives it and the directories inside it
# the user's.
{ lib }:
{
  # config.environment.persistence
  persistence,
  # config.preservation, when that module is imported
  preservation ? null,
  # config.users.users: a users' path without a group takes its user's group
  users,
  # config.home-manager.users, when Home Manager's NixOS module is imported: today's
  # impermanence reads each one's home.persistence itself (nixos.nix, allPersistentStoragePaths)
  homeManagerUsers ? { },
}:
let
  blib = import ./lib.nix { inherit lib; };
  rootPerms = {
    user = "root";
    group = "root";
    mode = "0755";
  };

  # "/home/alice/." -> "/home/alice"; "/a//b" -> "/a/b"
  normalise =
    path: "/" + lib.concatStringsSep "/" (lib.filter (s: s != "" && s != ".") (lib.splitString "/" path));

  # "/a/b/c" -> [ "/a" "/a/b" ]
  ancestors =
    path:
    let
      parts = lib.filter (s: s != "") (lib.splitString "/" path);
    in
    map (n: "/" + lib.concatStringsSep "/" (lib.take n parts)) (lib.range 1 (lib.length parts - 1));

  groupOf = user: group: if group != null then group else users.${user}.group or "root";
  # systemd wants /var/lib/private, which holds DynamicUser services' state, root's and 0700
  # (impermanence #93, #254): a parent made there by whoever gets that mode.
  privateParent = "/var/lib/private";
  directoryAt = path: perms: {
    directory = path;
    inherit (perms) user;
    mode = if path == privateParent then "0700" else perms.mode;
    group = groupOf perms.user perms.group;
  };

  # A home directory: its user's, 0700 (impermanence's homeDirs).
  homeOf =
    entry:
    directoryAt (normalise entry.home) {
      inherit (entry) user;
      group = null;
      mode = "0700";
    };

  # The directories above a directory-like entry (a persisted directory, or a
  # file's parentDirectory): a home's parents get root's defaults, the home
  # itself its user's and 0700, the rest the entry's defaults.
  parentsOf =
    entry:
    let
      path = normalise entry.dirPath;
      home = normalise entry.home;
      below = map (p: directoryAt p entry.defaultPerms);
    in
    if entry.home == null then
      below (ancestors path)
    else
      map (p: directoryAt p rootPerms) (ancestors home)
      ++ lib.optional (path != home) (homeOf entry)
      ++ below (lib.filter (lib.hasPrefix "${home}/") (ancestors path));

  directoryOf = d: {
    directory = normalise d.dirPath;
    root = d.persistentStoragePath;
    inherit (d) user mode;
    group = groupOf d.user d.group;
    parents = parentsOf d;
  };

  fileOf =
    f:
    let
      parent = f.parentDirectory;
      parentPath = normalise parent.dirPath;
      isHome = parent.home != null && parentPath == normalise parent.home;
    in
    {
      file = normalise f.filePath;
      root = f.persistentStoragePath;
      # impermanence has `method` since 2025-09; before it, mount-file.bash did what "auto"
      # does now (a bind mount of an existing file, else a link), and older pins still evaluate.
      method = f.method or "auto";
      parents =
        parentsOf parent
        ++ lib.optional (parentPath != "/") (
          if isHome then homeOf parent else directoryAt parentPath parent
        );
    };

  # Home Manager's home.persistence roots, enabled ones (impermanence's home-manager.nix).
  homeManagerRoots = lib.filter (r: r.enable) (
    lib.concatMap (u: lib.attrValues (u.home.persistence or { })) (lib.attrValues homeManagerUsers)
  );
  roots = lib.filter (r: r.enable) (lib.attrValues persistence);
  withUsers = roots ++ lib.concatMap (r: lib.attrValues r.users) roots ++ homeManagerRoots;

  # --- preservation ------------------------------------------------------------------------
  preserved =
    if preservation == null || !preservation.enable then [ ] else lib.attrValues preservation.preserveAt;

  # A preserved path's parents: its configured parent as declared, a home as
  # its user's, the directories inside a home its user's and 0755 (preservation
  # lists them as "_intermediate" paths), the rest root's and 0755.
  preservedParents =
    home: entry:
    let
      path = normalise (entry.directory or entry.file);
      parentPath = normalise (dirOf path);
      at =
        p:
        if entry.configureParent && p == parentPath then
          directoryAt p entry.parent
        else if home == null then
          directoryAt p rootPerms
        else if p == home.directory then
          home
        else if lib.hasPrefix "${home.directory}/" p then
          home // { directory = p; mode = "0755"; }
        else
          directoryAt p rootPerms;
    in
    map at (ancestors path);

  homeOfUser =
    user:
    directoryAt (normalise user.home) {
      user = user.username;
      group = null;
      # users-groups.nix: homeMode, "700" by default.
      mode = users.${user.username}.homeMode;
    };

  preservedIn =
    root: home: entries:
    map (entry: {
      inherit root entry;
      parents = preservedParents home entry;
    }) (lib.filter (entry: entry.how != "_intermediate") entries);
  preservedEntries =
    what:
    lib.concatMap (
      r:
      preservedIn r.persistentStoragePath null r.${what}
      ++ lib.concatMap (u: preservedIn r.persistentStoragePath (homeOfUser u) u.${what}) (
        lib.attrValues r.users
      )
    ) preserved;

  preservedDirectories = map (p: {
    directory = normalise p.entry.directory;
    inherit (p) root parents;
    inherit (p.entry) user group mode;
  }) (preservedEntries "directories");
  preservedFiles = map (p: {
    file = normalise p.entry.file;
    inherit (p) root parents;
    method = if p.entry.how == "symlink" then "symlink" else "auto";
  }) (preservedEntries "files");

  # First declaration of a path wins, as in create-directories.bash; sorted by path.
  uniqueByPath = key: list: lib.sort (a: b: a.${key} < b.${key}) (blib.uniqueBy key list);
in
{
  roots = lib.sort (a: b: a < b) (
    lib.unique (map (r: r.persistentStoragePath) (roots ++ homeManagerRoots ++ preserved))
  );
  directories = uniqueByPath "directory" (
    map directoryOf (lib.concatMap (r: r.directories) withUsers) ++ preservedDirectories
  );
  files = uniqueByPath "file" (map fileOf (lib.concatMap (r: r.files) withUsers) ++ preservedFiles);
}
