"""package.nix, the one derivation of the tool, and the entry points that build it.

Offline there is no full nixpkgs: package.nix is called with tests/nix/fake-pkgs.nix, whose
buildPythonApplication hands its arguments back. flake.nix is evaluated with stand-in inputs
(tests/nix/flake-outputs.nix), the modules with tests/nix/eval.nix (through default.nix, and
through the flake's nixosModules.default).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SYSTEM = "x86_64-linux"

# The attributes of the derivation the tests compare across entry points.
FIELDS = (
    "pname version builtBy pyproject build-system dependencies nativeBuildInputs "
    "makeWrapperArgs postInstall doCheck meta"
)
CALLED = (
    "(import ./tests/nix/fake-pkgs.nix { lib = import <nixpkgs/lib>; })"
    ".callPackage ./package.nix { }"
)
FLAKE = "(import ./tests/nix/flake-outputs.nix { })"


def fields(expression: str) -> str:
    """The compared attributes of the package `expression`, names of packages for packages."""
    return f"""
      let
        p = {expression};
        name = x: x.pname or x.name;
      in {{
        inherit (p) pname version builtBy pyproject doCheck makeWrapperArgs postInstall;
        build-system = map name p.build-system;
        dependencies = map name p.dependencies;
        nativeBuildInputs = map name p.nativeBuildInputs;
        meta = {{ inherit (p.meta) mainProgram description; }};
      }}"""


def module_expr(entry: str, attr: str, extra: str = "") -> str:
    """`attr` of the example host entered through `entry` (viaDefaultNix or viaFlake)."""
    modules = f"[ ({{ lib, ... }}: {extra}) ]" if extra else "[ ]"
    evaluated = (
        f'import ./tests/nix/eval.nix {{ host = "example"; {entry} = true; '
        f"extraModules = {modules}; }}"
    )
    return f"let inherit ({evaluated}) config lib; in {attr}"


def pyproject_names(requirements: list[str]) -> list[str]:
    """nixpkgs' attribute names of pyproject requirements: "ruamel.yaml>=0.18" -> "ruamel-yaml"."""
    names = [re.split(r"[<>=!~ ;\[]", requirement)[0] for requirement in requirements]
    return [name.lower().replace(".", "-").replace("_", "-") for name in names]


def test_package_is_pyprojects_name_and_version(nix_eval: Callable[[str], Any]) -> None:
    package = nix_eval(fields(CALLED))
    assert package["pname"] == PYPROJECT["project"]["name"] == "blankslate"
    assert package["version"] == PYPROJECT["project"]["version"]
    assert package["meta"]["mainProgram"] == "blankslate"
    assert package["pyproject"] is True
    # What pyproject.toml requires to build and to run, as nixpkgs names it.
    assert package["build-system"] == pyproject_names(PYPROJECT["build-system"]["requires"])
    assert PYPROJECT["build-system"]["build-backend"] == "setuptools.build_meta"
    assert package["dependencies"] == pyproject_names(PYPROJECT["project"]["dependencies"])


def test_runtime_tools_are_on_the_wrapper_path(nix_eval: Callable[[str], Any]) -> None:
    arguments = nix_eval(fields(CALLED))["makeWrapperArgs"]
    assert arguments[:3] == ["--prefix", "PATH", ":"]
    assert arguments[4:7] == ["--suffix", "PATH", ":"]
    store = "/nix/store/00000000000000000000000000000000-"
    first = [entry.removeprefix(store).removesuffix("/bin") for entry in arguments[3].split(":")]
    last = [entry.removeprefix(store).removesuffix("/bin") for entry in arguments[7].split(":")]
    # What scripts/blankslate runs, by package: btrfs, mkfs.btrfs; cp, truncate; mkfs.vfat; git;
    # sgdisk; mkpasswd; nixos-install, nixos-generate-config; ssh-keygen; partprobe; udevadm;
    # findmnt, losetup, lsblk, mount, mkswap, swapon, wipefs ...
    assert first == [
        "btrfs-progs",
        "coreutils",
        "dosfstools",
        "git",
        "gptfdisk",
        "mkpasswd",
        "nixos-install-tools",
        "openssh",
        "parted",
        "systemd",
        "util-linux",
    ]
    # ... and zfs, zpool; nix, nix-prefetch-url: after the system's own.
    assert last == ["zfs", "nix"]


def test_flake_builds_package_nix(nix_eval: Callable[[str], Any]) -> None:
    """packages.default is package.nix built with the flake's nixpkgs, and the apps run it."""
    called = nix_eval(fields(CALLED))
    for system in (SYSTEM, "aarch64-linux"):
        flake = nix_eval(fields(f"{FLAKE}.packages.{system}.default"))
        assert flake == {**called, "builtBy": "the flake's nixpkgs"}
    assert called["builtBy"] == "the system's nixpkgs"
    apps = nix_eval(
        f"""let o = {FLAKE}; in {{
          default = o.apps.{SYSTEM}.default.program;
          diff = o.apps.{SYSTEM}.diff.program;
          exe = "${{o.packages.{SYSTEM}.default}}/bin/blankslate";
        }}"""
    )
    assert apps["default"] == apps["exe"]
    assert apps["diff"].endswith("-blankslate-diff")  # writeShellScript: exec EXE diff "$@"


@pytest.mark.parametrize("entry", ["viaDefaultNix", "viaFlake"])
def test_the_modules_install_the_package(entry: str, nix_eval: Callable[[str], Any]) -> None:
    """Both entry points to the modules put package.nix's build in environment.systemPackages,
    next to nixpkgs' own packages (a normal-priority definition, not one that loses to them)."""
    enabled = "{ blankslate.enable = true; }"
    package = nix_eval(module_expr(entry, fields("config.blankslate.package"), enabled))
    called = nix_eval(fields(CALLED))
    built_by = "the flake's nixpkgs" if entry == "viaFlake" else "the system's nixpkgs"
    assert package == {**called, "builtBy": built_by}
    installed = nix_eval(
        module_expr(entry, "map (p: p.name) config.environment.systemPackages", enabled)
    )
    assert f"blankslate-{PYPROJECT['project']['version']}" in installed
    assert {"coreutils", "util-linux"} <= set(installed)  # the model's nixpkgs definition


@pytest.mark.parametrize("entry", ["viaDefaultNix", "viaFlake"])
def test_package_option_is_the_users_and_only_when_enabled(
    entry: str, nix_eval: Callable[[str], Any]
) -> None:
    # A plain definition: it beats the flake's mkDefault and the option's default.
    mine = (
        "{ blankslate.enable = true; blankslate.package = "
        '{ type = "derivation"; name = "mine"; outPath = "/nix/store/x-mine"; }; }'
    )
    names = "map (p: p.name) config.environment.systemPackages"
    installed = nix_eval(module_expr(entry, names, mine))
    assert "mine" in installed
    assert not any(name.startswith("blankslate") for name in installed)
    disabled = nix_eval(module_expr(entry, names, "{ blankslate.enable = lib.mkForce false; }"))
    assert not any(name.startswith("blankslate") for name in disabled)
    assert "coreutils" in disabled


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not found")
def test_post_install_writes_the_three_completion_files(
    nix_eval: Callable[[str], Any], tmp_path: Path
) -> None:
    """package.nix's postInstall, run by bash against this checkout's program, with
    installShellCompletion modelled on nixpkgs' setup hook (pkgs/by-name/in/installShellFiles/
    setup-hook.sh: --bash, --zsh, --fish pick the directory, --name the file's name)."""
    post_install = nix_eval(f"({CALLED}).postInstall")
    out = tmp_path / "out"
    (out / "bin").mkdir(parents=True)
    program = out / "bin" / "blankslate"
    program.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m blankslate "$@"\n')
    program.chmod(0o755)
    hook = r"""
installShellCompletion() {
  local dir name
  while (( $# )); do
    case $1 in
      --bash) dir=bash-completion/completions;;
      --zsh) dir=zsh/site-functions;;
      --fish) dir=fish/vendor_completions.d;;
      --name) name=$2; shift;;
      *) mkdir -p "$out/share/$dir"; cp "$1" "$out/share/$dir/$name"; name=;;
    esac
    shift
  done
}
set -euo pipefail
"""
    work = tmp_path / "build"
    work.mkdir()
    subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", hook + post_install],
        cwd=work,
        env={"PATH": "/usr/bin:/bin", "out": str(out), "PYTHONPATH": ""},
        check=True,
    )
    files = {
        "bash": out / "share/bash-completion/completions/blankslate",
        "zsh": out / "share/zsh/site-functions/_blankslate",
        "fish": out / "share/fish/vendor_completions.d/blankslate.fish",
    }
    for shell, path in files.items():
        expected = subprocess.run(
            [str(program), "completion", shell], capture_output=True, text=True, check=True
        ).stdout
        assert path.read_text() == expected
        assert f"_BLANKSLATE_COMPLETE=complete_{shell}" in expected
    assert sorted(str(p.relative_to(out)) for p in (out / "share").rglob("*") if p.is_file()) == (
        sorted(str(p.relative_to(out)) for p in files.values())
    )


def test_package_source_holds_what_setuptools_reads(nix_eval: Callable[[str], Any]) -> None:
    """src keeps pyproject.toml, the README it names and the package with its data
    (package-data: *.json, *.bash, py.typed); not tests, hosts, caches or a local virtual
    environment. The filter is asked about every path of the checkout, as builtins.path asks
    it (a directory it refuses is not entered)."""
    candidates: list[tuple[str, str]] = []
    for path in sorted(REPO.rglob("*")):
        relative = path.relative_to(REPO)
        if relative.parts[0] in (".git", ".venv") and len(relative.parts) > 1:
            continue
        kind = "directory" if path.is_dir() else "symlink" if path.is_symlink() else "regular"
        candidates.append((str(relative), kind))
    pairs = " ".join(
        f"{{ path = {json.dumps(str(REPO / rel))}; type = {json.dumps(kind)}; }}"
        for rel, kind in candidates
    )
    accepted = nix_eval(f"let p = {CALLED}; in map (c: p.src.filter c.path c.type) [ {pairs} ]")
    kept = {rel for (rel, _), ok in zip(candidates, accepted, strict=True) if ok}
    # Only what lies in kept directories reaches the store.
    reached = {rel for rel in kept if str(Path(rel).parent) in kept | {"."}}
    package = REPO / "scripts" / "blankslate"
    wanted = {"pyproject.toml", PYPROJECT["project"]["readme"], "scripts", "scripts/blankslate"}
    wanted |= {
        str(path.relative_to(REPO))
        for path in package.iterdir()
        if path.is_file()
        and (path.suffix in (".py", ".json", ".bash", ".txt") or path.name == "py.typed")
    }
    assert reached == wanted
    assert {
        "scripts/blankslate/default-plan.json",
        "scripts/blankslate/disko-blank-snapshot.bash",
        "scripts/blankslate/py.typed",
        "scripts/blankslate/password-hashes.txt",  # the password rule the guard reads too
        "scripts/blankslate/rules.json",  # the name rules lib.nix reads too
    } <= reached
    assert PYPROJECT["tool"]["setuptools"]["package-data"] == {
        "blankslate": ["*.json", "*.bash", "*.txt", "py.typed"]
    }


def test_dev_shell_has_the_tools_of_the_test_suite(nix_eval: Callable[[str], Any]) -> None:
    """`nix develop`: Python with the package's and the tests' modules, ruff, and the commands
    the integration tests run; PYTHONPATH points at the checkout's scripts/."""
    shell = nix_eval(
        f"""let s = {FLAKE}.devShells.{SYSTEM}.default; in {{
          python = (builtins.head s.packages).chosen;
          tools = map (p: p.pname) (builtins.tail s.packages);
          hook = s.shellHook;
        }}"""
    )
    assert set(shell["python"]) >= {"typer", "ruamel-yaml", "pytest", "pytest-subprocess"}
    assert {"hypothesis", "mypy"} <= set(shell["python"])
    assert {"ruff", "btrfs-progs", "parted", "gptfdisk", "mkpasswd"} <= set(shell["tools"])
    assert "export PYTHONPATH=$PWD/scripts" in shell["hook"]


def python_modules(expression: str, nix_eval: Callable[[str], Any]) -> list[str]:
    return sorted(nix_eval(f"({expression}).chosen"))


def test_the_check_and_the_dev_shell_have_pyprojects_modules(
    nix_eval: Callable[[str], Any],
) -> None:
    """checks.pytest and `nix develop` run the suite with what pyproject.toml declares: the
    package's dependencies and the `test` extra (hypothesis and rich included), no more."""
    declared = sorted(
        pyproject_names(
            PYPROJECT["project"]["dependencies"]
            + PYPROJECT["project"]["optional-dependencies"]["test"]
        )
    )
    assert {"hypothesis", "rich"} <= set(declared)
    check = f"builtins.head {FLAKE}.checks.{SYSTEM}.pytest.nativeBuildInputs"
    shell = f"builtins.head {FLAKE}.devShells.{SYSTEM}.default.packages"
    assert python_modules(check, nix_eval) == declared
    assert python_modules(shell, nix_eval) == declared


def test_ui_imports_only_declared_modules() -> None:
    """rich, which ui.py imports, is one of the package's declared dependencies."""
    source = (REPO / "scripts/blankslate/ui.py").read_text()
    assert re.search(r"^(from|import) rich\b", source, re.MULTILINE)
    assert "rich" in pyproject_names(PYPROJECT["project"]["dependencies"])
