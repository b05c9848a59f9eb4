# The plan's `units`: every enabled systemd service that has systemd make directories for its
# state (StateDirectory=, CacheDirectory=, LogsDirectory=), for `diff --suggest` to group the
# lost paths by the service that owns them. RuntimeDirectory= is left out: /run is a tmpfs.
#
# nixpkgs' nixos/lib/systemd-unit-options.nix: serviceConfig is `attrsOf unitOption`, and a
# unitOption is a string (or bool, int) or, when any definition is a list, the concatenated
# list. systemd.exec(5): a directory option takes whitespace-separated relative paths, each
# optionally "path:symlink" (the directory is the part before the colon); DynamicUser= puts
# them in /var/lib/private (and /var/cache/private, /var/log/private) with a symlink.
# Only these keys' values are read, so nothing else of a unit is forced. What the tool would
# refuse (scripts/blankslate/plan.py, the same rules) is left out rather than break the plan: a
# directory that is not a relative normalised path, a User=/Group= that is not a plain name
# (a template's "%i"), a unit whose name systemd would not take.
{ lib, blib }:
services:
let
  # "a b:c" or [ "a" "b" ] -> [ "a" "b" ]; anything else (a bool, a number) -> [ ].
  directories =
    value:
    let
      words =
        if builtins.isList value then
          lib.concatMap directories value
        else if builtins.isString value then
          lib.filter (word: builtins.isString word && word != "") (builtins.split "[[:space:]]+" value)
        else
          [ ];
      relative = lib.filter (path: path != "" && blib.isNormalPath "/${path}");
    in
    if builtins.isList value then
      words
    else
      relative (map (word: lib.head (lib.splitString ":" word)) words);
  # systemd's boolean spellings (systemd.syntax(7)).
  truthy =
    value:
    value == true
    || lib.elem (lib.toLower (toString value)) [
      "1"
      "yes"
      "y"
      "true"
      "t"
      "on"
    ];
  # A name the plan accepts (rules.json's account: what shadow-utils accepts); a specifier such
  # as "%i" of a template unit is no name yet: null.
  nameOrNull = value: if builtins.isString value && blib.follows "account" value then value else null;
  # systemd.unit(5)'s characters of a unit name, as plan.py's _UNIT_NAME.
  isUnitName = name: builtins.match "[A-Za-z0-9:_.\\@-]{1,255}" name != null;
  record =
    name: service:
    let
      config = service.serviceConfig;
      dynamicUser = truthy (config.DynamicUser or false);
    in
    {
      inherit name dynamicUser;
      stateDirectories = directories (config.StateDirectory or [ ]);
      cacheDirectories = directories (config.CacheDirectory or [ ]);
      logsDirectories = directories (config.LogsDirectory or [ ]);
      user = if dynamicUser then null else nameOrNull (config.User or null);
      group = if dynamicUser then null else nameOrNull (config.Group or null);
    };
  hasDirectories =
    unit: unit.stateDirectories != [ ] || unit.cacheDirectories != [ ] || unit.logsDirectories != [ ];
in
# attrNames is sorted: the units come out sorted by name.
lib.filter hasDirectories (
  map (name: record name services.${name}) (
    lib.filter (name: isUnitName name && (services.${name}.enable or true)) (lib.attrNames services)
  )
)
