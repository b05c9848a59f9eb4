# impermanence's NixOS module as the flake's nixosModules.default brings it: it works alone,
# and next to the same module imported by the configuration itself
# (impermanence.nixosModules.impermanence). That import is a function value, which the module
# system cannot recognise as ours (lib/modules.nix dedupes modules by key, and a function gets
# its key from where it is imported), and two full declarations of environment.persistence
# fail ("already declared"). So this module declares environment.persistence only as a shell
# that merges with impermanence's declaration (a type, no default or description), and keeps
# a full copy of impermanence's module under blankslate._impermanence:
#   - with the configuration's own import, environment.persistence is impermanence's option
#     (the shell adds nothing but a catch-all for attributes it does not know) and the copy
#     stays off;
#   - alone, the shell collects the definitions as they are written and hands them to the
#     copy, which does what impermanence does (its option and its configuration, read from
#     blankslate._impermanence); blankslate._persistence is the copy's evaluated value, the one
#     the plan reads.
# Not part of ./default.nix: the non-flake entry point imports impermanence's file itself.
impermanenceModule:
{
  config,
  options,
  lib,
  pkgs,
  utils,
  ...
}:
let
  inherit (lib) mkOption types;

  # The configuration declares environment.persistence too: impermanence's own module is there.
  importedElsewhere = lib.length options.environment.persistence.declarations > 1;

  # impermanence's module reading and declaring blankslate._impermanence instead of
  # environment.persistence (its `cfg`); everything else it reads is the system's.
  copy = impermanenceModule {
    inherit options lib pkgs utils;
    config = config // {
      environment = config.environment // {
        persistence = config.blankslate._impermanence;
      };
    };
  };

  # A definition as written: attribute sets merge per attribute (with mkDefault, mkIf, ...
  # resolved there), lists concatenate, anything else must be the same everywhere.
  written = types.mkOptionType {
    name = "impermanenceDefinition";
    description = "definition of environment.persistence as written";
    merge =
      loc: defs:
      let
        values = map (d: d.value) defs;
      in
      if lib.all lib.isList values then
        lib.concatLists values
      else if lib.all lib.isAttrs values then
        (types.attrsOf written).merge loc defs
      else
        lib.mergeEqualOption loc defs;
  };
in
{
  _file = toString ./impermanence-once.nix;

  # The copy's options, environment.persistence moved: the others (impermanence before
  # September 2025 declares an empty virtualisation.fileSystems) have no default, and merge
  # with the same declaration of the configuration's own import.
  options = lib.recursiveUpdate (
    copy.options
    // {
      environment = removeAttrs copy.options.environment [ "persistence" ];
    }
  ) {
    environment.persistence = mkOption {
      type = types.attrsOf (types.submodule { freeformType = types.lazyAttrsOf written; });
    };
    blankslate._impermanence = copy.options.environment.persistence // {
      internal = true;
      visible = false;
    };
  };

  config = lib.mkMerge [
    # impermanence's own default, when this is the only declaration.
    { environment.persistence = lib.mkOptionDefault { }; }
    (lib.mkIf (!importedElsewhere) {
      blankslate._impermanence = config.environment.persistence;
      blankslate._persistence = config.blankslate._impermanence;
    })
    (lib.mkIf (!importedElsewhere) copy.config)
  ];
}
