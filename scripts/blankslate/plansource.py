"""Where a command's plan comes from: loading order, first match wins: `--plan FILE`, `--host NAME`
(via `nix eval`, nix.py), `/etc/blankslate/plan.json`, the built-in default (the layout of
`hosts/example`). plan.py holds the contract itself (its types, parsing and validation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from blankslate import nix, plan, process
from blankslate.errors import BlankslateError, decode_utf8

INSTALLED_PLAN = Path("/etc/blankslate/plan.json")


def from_file(path: Path) -> plan.Plan:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BlankslateError(f"plan: cannot read {path}: {error.strerror}") from None
    return plan.from_json(plan.parse_text(decode_utf8(data, f"plan: {path}"), str(path)))


def from_host(host: str, flake: str = ".") -> plan.Plan:
    text = process.output(nix.eval_plan(flake, host))
    return plan.from_json(plan.parse_text(text, f"nix eval of host {host!r}"))


def default_text() -> str:
    # Beside this module, read as a plain file (as rules.json): importlib.resources cost
    # `diff` 3.5 ms of its start.
    return (Path(__file__).parent / "default-plan.json").read_text(encoding="utf-8")


def default() -> plan.Plan:
    return plan.from_json(plan.parse_text(default_text(), "built-in default"))


def split_flake(flake: str, host: str | None) -> tuple[str, str | None]:
    """nixos-rebuild's `--flake REF#HOST`: (REF, HOST), split on the last '#'; a ValueError
    when the fragment is empty or --host names another host."""
    if "#" not in flake:
        return flake, host
    reference, _, fragment = flake.rpartition("#")
    if not fragment:
        raise ValueError(f"--flake {flake}: no host after '#' (give REF#HOST)")
    if host is not None and host != fragment:
        raise ValueError(f"--flake {flake} names host {fragment!r}, --host {host!r}")
    return reference or ".", fragment


@dataclass(frozen=True)
class PlanSource:
    """Where a command's plan comes from: `--plan FILE`, or `--host NAME` from `--flake REF`;
    neither, the installed plan (or the built-in default). One value, so that no command
    threads three options through."""

    file: Path | None = None
    host: str | None = None
    flake: str = "."

    @classmethod
    def of(cls, file: Path | None, host: str | None, flake: str = ".") -> PlanSource:
        """From the three options, `--flake REF#HOST` split as nixos-rebuild does; a ValueError
        (a usage error) for a conflict."""
        flake, host = split_flake(flake, host)
        if file is not None and host is not None:
            raise ValueError("give either --plan or --host, not both")
        return cls(file, host, flake)


log = logging.getLogger("blankslate")


def load(
    source: PlanSource = PlanSource(),
    installed: Path | None = None,
    builtin: bool = True,
) -> plan.Plan:
    """The plan from the first source that is given or present (the README's order); which one
    is said on stderr (a log line, silent under --quiet). `builtin` False: the commands that
    act on this system's own disk (diff, seed, roots, recover) stop instead of taking the
    built-in default; so do doctor, ignore, disko and extra-files, which would otherwise
    silently check or write the example's."""
    if source.file is not None:
        loaded, said = from_file(source.file), f"from {source.file}"
    elif source.host is not None:
        log.info("plan: evaluating host %s of flake %s (nix eval)...", source.host, source.flake)
        loaded, said = from_host(source.host, source.flake), f"from flake {source.flake}"
    elif (installed := installed or INSTALLED_PLAN).exists():
        loaded, said = from_file(installed), f"from {installed}"
    elif not builtin:
        raise BlankslateError(
            f"no plan: {installed} does not exist (not a system built from the blankslate "
            "modules?); give --host NAME from a flake checkout, or --plan FILE (`blankslate "
            "plan > plan.json` writes the built-in example's)"
        )
    else:
        log.info("plan: built-in default (the hosts/example layout)")
        return default()
    log.info("plan: host %s %s", loaded.host_name, said)
    return loaded
