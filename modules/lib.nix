# Pure helpers for the blankslate modules. No config, no pkgs: each
# function maps its input to its output as in the comment above it.
{ lib }:
let
  inherit (lib)
    any
    foldl'
    hasPrefix
    stringLength
    ;
in
rec {
  # "nixos" -> "/dev/disk/by-label/nixos"
  byLabel = label: "/dev/disk/by-label/${label}";

  # "/var/lib/nixos" -> { directory = "/var/lib/nixos"; user = "root"; group = "root"; mode = "0755"; }
  # { directory = "/srv"; mode = "0700"; } -> { directory = "/srv"; user = "root"; group = "root"; mode = "0700"; }
  toDirectory =
    d:
    {
      user = "root";
      group = "root";
      mode = "0755";
    }
    // (if builtins.isString d then { directory = d; } else d);

  # "/etc/machine-id" -> { file = "/etc/machine-id"; }
  toFile = f: if builtins.isString f then { file = f; } else f;

  # "directory" [ { directory = "/a"; mode = "1"; } { directory = "/a"; } { directory = "/b"; } ]
  #   -> [ { directory = "/a"; mode = "1"; } { directory = "/b"; } ]   (first one wins)
  uniqueBy =
    key: list:
    (foldl' (
      acc: x:
      if acc.seen ? ${x.${key}} then
        acc
      else
        {
          seen = acc.seen // {
            ${x.${key}} = true;
          };
          out = acc.out ++ [ x ];
        }
    ) { seen = { }; out = [ ]; } list).out;

  # "/persist" "/persist/etc" -> true ; "/persist" "/persistent" -> false ; "/" "/x" -> true
  isUnder = parent: path: parent == "/" || path == parent || hasPrefix "${parent}/" path;

  # [ "/" "/nix" "/persist" ] "/persist/passwords" -> "/persist"  (longest containing mountpoint, or null)
  mountpointOf =
    mountpoints: path:
    foldl' (
      best: m:
      if isUnder m path && (best == null || stringLength m > stringLength best) then m else best
    ) null mountpoints;

  # { "/" = { }; "/nix" = { mountPoint = "/nix"; }; } -> [ "/" "/nix" ]
  mountpointsOf = fileSystems: lib.mapAttrsToList (name: fs: fs.mountPoint or name) fileSystems;

  # { log = { mountPoint = "/var/log"; neededForBoot = true; }; } "/var/log" -> { mountPoint = "/var/log"; neededForBoot = true; }
  # { "/nix" = { }; } "/var/log" -> null
  fileSystemAt =
    fileSystems: mountpoint:
    lib.findFirst (fs: fs != null) null (
      lib.mapAttrsToList (name: fs: if (fs.mountPoint or name) == mountpoint then fs else null) fileSystems
    );

  # ./x.bash [ "a" "b c" ] -> "bash -c '<text of x.bash>' x.bash 'a' 'b c'"
  # For the scripted initrd, which holds no store paths: the script travels inline.
  inlineBash =
    file: args:
    "bash -c ${lib.escapeShellArg (builtins.readFile file)} ${baseNameOf (toString file)} ${lib.escapeShellArgs args}\n";

  # "/var/log" [ "/" "/var/log" ] -> true
  isMountpoint = path: mountpoints: any (m: m == path) mountpoints;
}
