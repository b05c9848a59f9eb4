# pyproject.toml's requirements as nixpkgs' Python packages, so that package.nix, the flake's
# checks.pytest and its devShell read one list:
#   (import ./python-requirements.nix { inherit lib; }).test python3Packages
#     -> [ pytest pytest-subprocess hypothesis ruff mypy ]  ("ruamel.yaml>=0.18" -> ruamel-yaml)
{ lib }:
let
  pyproject = lib.importTOML ./pyproject.toml;
  # "ruamel.yaml>=0.18" -> "ruamel-yaml": the name before any version or marker, as nixpkgs spells it.
  attrName =
    requirement:
    lib.toLower (
      lib.replaceStrings [ "." "_" ] [ "-" "-" ] (
        lib.head (builtins.match "[[:space:]]*([A-Za-z0-9._-]+).*" requirement)
      )
    );
  select = requirements: ps: map (requirement: ps.${attrName requirement}) requirements;
in
{
  inherit attrName;
  runtime = select pyproject.project.dependencies;
  test = select pyproject.project.optional-dependencies.test;
}
