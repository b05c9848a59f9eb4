# The plan's persistence section, read from the evaluated
# environment.persistence the way impermanence reads it (nixos.nix,
# allPersistentStoragePaths): every enabled root, its paths and its users'
# paths, each with absolute paths, the root that keeps it, and the
# directories above it in the order and with the owner and mode impermanence
# creates them (create-directories.bash: a directory that exists is left
# alone, so the first declaration wins).
{ lib }:
{
  # config.environment.persistence
  persistence,
  # config.users.users: a users' path without a group takes its user's group
  users,
}:
let
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
  directoryAt = path: perms: {
    directory = path;
    inherit (perms) user mode;
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
      inherit (f) method;
      parents =
        parentsOf parent
        ++ lib.optional (parentPath != "/") (
          if isHome then homeOf parent else directoryAt parentPath parent
        );
    };

  roots = lib.filter (r: r.enable) (lib.attrValues persistence);
  withUsers = roots ++ lib.concatMap (r: lib.attrValues r.users) roots;
  # First declaration of a path wins, as in create-directories.bash.
  uniqueByPath =
    key: list: lib.attrValues (lib.foldl' (seen: x: { ${x.${key}} = x; } // seen) { } list);
in
{
  roots = lib.sort (a: b: a < b) (lib.unique (map (r: r.persistentStoragePath) roots));
  directories = uniqueByPath "directory" (map directoryOf (lib.concatMap (r: r.directories) withUsers));
  files = uniqueByPath "file" (map fileOf (lib.concatMap (r: r.files) withUsers));
}
