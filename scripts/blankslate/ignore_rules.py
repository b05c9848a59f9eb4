"""Audit ignore rules: patterns of paths that may be erased at every boot, and their YAML file.

A pattern is absolute (or starts with `**/`) and is one of:
- an exact path, `/etc/adjtime`: that path only;
- `dir/**`: the directory itself and everything below it;
- a glob: `*` and `?` stay inside one path component, `[...]` is a character class, and a `**`
  component matches any number of components.

The ignore file is YAML, edited round-trip so the user's comments and order survive:

    ignore:
      - pattern: /var/cache/**
        reason: services rebuild their caches
"""

from __future__ import annotations

import io
import os
import re
import stat
import sys
import warnings
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from operator import contains
from pathlib import Path
from typing import TYPE_CHECKING

from blankslate.errors import BlankslateError, decode_utf8

if TYPE_CHECKING:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    from blankslate.plansource import PlanSource

_GLOB_CHARS = re.compile(r"[*?\[]")

# Erased at every boot on any system, by definition.
BUILTIN_IGNORES: tuple[tuple[str, str], ...] = (
    ("/tmp/**", "temporary files are erased at every boot by definition"),
    ("/var/tmp/**", "temporary files; blankslate roots do not keep them across boots"),
    ("/root/.cache/**", "a cache, rebuilt on demand"),
    ("/var/cache/**", "caches, rebuilt on demand"),
    ("/var/lib/systemd/random-seed", "refreshed from the kernel's entropy at every boot"),
    ("/var/lib/systemd/coredump/**", "crash dumps of the previous boot"),
)


@dataclass(frozen=True)
class Rule:
    pattern: str
    reason: str
    source: str  # where the rule comes from: "built-in", "plan audit.ignore", "FILE line N"


def check_pattern(pattern: str) -> None:
    """Raise ValueError with the reason when `pattern` is not a usable pattern."""
    if not (pattern.startswith("/") or pattern.startswith("**/")):
        raise ValueError(f"pattern {pattern!r} must be absolute (start with / or **/)")
    if "\0" in pattern or "\n" in pattern:
        raise ValueError("a pattern may not contain a newline or NUL")
    if pattern.count("[") != pattern.count("]"):
        raise ValueError(f"pattern {pattern!r} has an unclosed [...] class")
    try:
        re.compile(translate(pattern))
    except re.error as error:
        raise ValueError(f"pattern {pattern!r} is not a valid glob ({error})") from None


def _characters(text: str) -> list[str | None]:
    """One path component of a glob as one regular expression per character it matches,
    None for a run of `*`. No expression ever matches `/`."""
    out: list[str | None] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "*":
            if not out or out[-1] is not None:
                out.append(None)
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = text.find("]", index + 2)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = text[index + 1 : end]
                if body.startswith("!"):
                    body = "^/" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                index = end
        else:
            out.append(re.escape(char))
        index += 1
    return out


def _component(text: str) -> str:
    """One path component of a glob as a regular expression that never crosses `/`.

    The fixed text between two `*` is taken at its first place, in an atomic group: if the
    rest cannot match after the first place it cannot after a later one (the rest starts with
    a `*`), and the regex engine does not try every way of splitting the name between stars.
    """
    pieces: list[list[str]] = [[]]
    for character in _characters(text):
        if character is None:
            pieces.append([])
        else:
            pieces[-1].append(character)
    joined = ["".join(piece) for piece in pieces]
    if len(joined) == 1:
        return joined[0]
    first, *middle, last = joined
    return first + "".join(f"(?>[^/]*?{piece})" for piece in middle) + "[^/]*" + last


def translate(pattern: str) -> str:
    """A pattern as a regular expression for `fullmatch` on an absolute path.

    "/var/cache/**" -> r"/var/cache(?:/.*)?", "/home/*/.x" -> r"/home/[^/]*/\\.x".

    Consecutive `**` are one. Every `**` but the last is followed by the components up to the
    next `**` in an atomic group, taking their first place, as `_component` does with `*`:
    matching takes polynomial time, not one try per way of splitting the path among them.
    """
    parts = pattern.split("/")
    if parts[0] == "":
        parts = parts[1:]
    parts = [p for i, p in enumerate(parts) if not (p == "**" and i > 0 and parts[i - 1] == "**")]
    last_double = max((i for i, part in enumerate(parts) if part == "**"), default=-1)
    out: list[str] = []
    atomic = False
    for position, part in enumerate(parts):
        if part == "**":
            if atomic:
                out.append(")")
            atomic = position < last_double
            if position == len(parts) - 1:
                out.append("(?:/.*)?")
            else:
                out.append("(?>(?:/[^/]+)*?" if atomic else "(?:/[^/]+)*")
        elif atomic:  # inside the group each component must end where the name does
            out.append("/" + _component(part) + "(?![^/])")
        else:
            out.append("/" + _component(part))
    return "".join(out)


def _literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard: "/var/cache/**" -> "/var/cache"."""
    found = _GLOB_CHARS.search(pattern)
    literal = pattern if found is None else pattern[: found.start()]
    return literal.rstrip("/") if literal.endswith("/") else literal


def _required_text(pattern: str) -> str:
    """The longest plain text of one component of a glob, before any `[`: every path the glob
    matches holds it. "**/link *" -> "link "; "" when the glob has none ("**/*")."""
    longest = ""
    for component in pattern.split("/"):
        for piece in re.split(r"[*?]", component.split("[", 1)[0]):
            if len(piece) > len(longest):
                longest = piece
    return longest


def find_sorted(paths: Sequence[str], wanted: Iterable[str]) -> Iterator[int]:
    """Where each of `wanted` sits in the sorted `paths`, for those present."""
    for path in wanted:
        index = bisect_left(paths, path)
        if index < len(paths) and paths[index] == path:
            yield index


class RuleSet:
    """Rules compiled for fast matching: exact paths in a dict, every glob in one regex."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = list(rules)
        self._exact: dict[str, Rule] = {}
        globs: list[Rule] = []
        for rule in self.rules:
            if _GLOB_CHARS.search(rule.pattern):
                globs.append(rule)
            else:
                self._exact.setdefault(rule.pattern.rstrip("/") or "/", rule)
        self._globs = globs
        # Most globs start with a literal directory: a C-level prefix test skips the regex.
        prefixes = tuple(_literal_prefix(rule.pattern) for rule in globs)
        self._prefixes = None if "" in prefixes else prefixes
        self._narrowed = {prefix for prefix in prefixes if prefix}
        # The others ("**/name *") mostly hold a plain text that every match contains.
        texts = [
            _required_text(rule.pattern)
            for rule, prefix in zip(globs, prefixes, strict=True)
            if not prefix
        ]
        self._texts = None if "" in texts else set(texts)
        joined = "|".join(f"(?P<r{i}>{translate(rule.pattern)})" for i, rule in enumerate(globs))
        # DOTALL: a name may hold a newline, which "**" matches as any other character.
        self._regex = re.compile(joined, re.DOTALL) if globs else None

    def candidates(self, paths: Sequence[str]) -> Iterator[int]:
        """Indices of the sorted `paths` that a rule may match: a superset, `match` decides."""
        yield from find_sorted(paths, self._exact)
        if self._regex is None:
            return
        if self._texts is None:  # a glob with no literal at all: each path is tried
            yield from compress(range(len(paths)), map(self._regex.fullmatch, paths))
            return
        for text in self._texts:  # C-level substring tests, not the regex on every path
            yield from compress(range(len(paths)), map(contains, paths, repeat(text)))
        for prefix in self._narrowed:
            start = bisect_left(paths, prefix)
            if ord(prefix[-1]) == sys.maxunicode:
                yield from range(start, len(paths))
                continue
            yield from range(start, bisect_left(paths, prefix[:-1] + chr(ord(prefix[-1]) + 1)))

    def match(self, path: str) -> Rule | None:
        """The first rule matching `path` (exact rules before globs), or None."""
        rule = self._exact.get(path)
        if rule is not None:
            return rule
        if self._regex is None:
            return None
        if self._prefixes is not None and not path.startswith(self._prefixes):
            return None
        found = self._regex.fullmatch(path)
        if found is None or found.lastgroup is None:
            return None
        return self._globs[int(found.lastgroup[1:])]


def builtin_rules() -> list[Rule]:
    return [Rule(pattern, reason, "built-in") for pattern, reason in BUILTIN_IGNORES]


def plan_rules(patterns: Sequence[str]) -> list[Rule]:
    rules = []
    for index, pattern in enumerate(patterns):
        try:
            check_pattern(pattern)
        except ValueError as error:
            raise BlankslateError(f"plan: audit.ignore[{index}]: {error}") from None
        rules.append(Rule(pattern, "listed in the plan's audit.ignore", "plan audit.ignore"))
    return rules


# --------------------------------------------------------------------------- the YAML file
# ruamel.yaml is imported only where a file is read or written: most `diff` runs have none.


def _yaml() -> YAML:
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip mode: comments, order and quoting survive
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    return yaml


# An ignore file is a few kilobytes; its rules nest 3 levels (mapping, list, mapping).
MAX_FILE_BYTES = 16 << 20
MAX_DEPTH = 64  # as the plan loader's cap


NULL_DEVICE = os.makedev(1, 3)  # Linux's /dev/null, character device 1:3


def _read_text(path: Path) -> str | None:
    """The ignore file's text; None when there is no file. Only a regular file is read (a
    device, a FIFO or a directory is refused; /dev/null reads as empty), and at most
    MAX_FILE_BYTES of it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise BlankslateError(f"cannot read ignore file {path}: {error.strerror}") from None
    info = os.fstat(fd)
    if stat.S_ISCHR(info.st_mode) and info.st_rdev == NULL_DEVICE:
        os.close(fd)
        return ""  # `--ignore-file /dev/null`: no rules
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise BlankslateError(f"ignore file {path} is not a regular file")
    with os.fdopen(fd, "rb") as file:
        try:
            data = file.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise BlankslateError(f"cannot read ignore file {path}: {error.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise BlankslateError(f"ignore file {path} is larger than {MAX_FILE_BYTES} bytes")
    return decode_utf8(data, f"ignore file {path}")


def _check_depth(path: Path, text: str) -> None:
    """Refuse a document nested deeper than MAX_DEPTH before it is built: ruamel builds
    nested collections recursively (a RecursionError some 300 levels down), while its parser,
    which yields the events counted here, keeps its own stack."""
    from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

    depth = 0
    for event in _yaml().parse(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark is not None else 0
                raise BlankslateError(
                    f"ignore file {path} line {line}: nested too deeply (more than "
                    f"{MAX_DEPTH} levels)"
                )
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def _load_document(path: Path) -> CommentedMap:
    return _parse_document(path, _read_text(path))


def _parse_document(path: Path, text: str | None) -> CommentedMap:
    """The ignore file's `text` parsed (None: no file, an empty document)."""
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError

    if text is None:
        return CommentedMap()
    try:
        _check_depth(path, text)
        with warnings.catch_warnings():
            # ruamel only warns, on stderr, over many lines; the later anchor wins unseen.
            warnings.simplefilter("error", ReusedAnchorWarning)
            document = _yaml().load(text)
    except ReusedAnchorWarning as warning:
        said = str(warning).strip().splitlines()
        lines = re.findall(r"line (\d+)", str(warning))
        where = f" line {lines[-1]}" if lines else ""
        raise BlankslateError(
            f"ignore file {path}{where}: {said[0] if said else warning}"
        ) from None
    except RecursionError:
        raise BlankslateError(f"ignore file {path}: nested too deeply") from None
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = error.problem or error.context or "not valid YAML"
        raise BlankslateError(f"ignore file {path}{where}: {problem}") from None
    except YAMLError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "not valid YAML"
        raise BlankslateError(f"ignore file {path}: not valid YAML ({first})") from None
    if document is None:
        return CommentedMap()
    if not isinstance(document, CommentedMap):
        raise BlankslateError(f"ignore file {path} line 1: expected a mapping with key 'ignore'")
    unknown = [key for key in document if key != "ignore"]
    if unknown:
        line = document.lc.key(unknown[0])[0] + 1
        raise BlankslateError(f"ignore file {path} line {line}: unknown key {unknown[0]!r}")
    return document


def _rules_of(path: Path, document: CommentedMap) -> list[Rule]:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    items = document.get("ignore")
    if items is None:
        return []
    if not isinstance(items, CommentedSeq):
        line = document.lc.value("ignore")[0] + 1
        raise BlankslateError(f"ignore file {path} line {line}: 'ignore' must be a list")
    rules = []
    for index, item in enumerate(items):
        line = items.lc.item(index)[0] + 1
        if not isinstance(item, CommentedMap):
            raise BlankslateError(
                f"ignore file {path} line {line}: each rule is a mapping with pattern and reason"
            )
        missing = [key for key in ("pattern", "reason") if key not in item]
        unknown = [key for key in item if key not in ("pattern", "reason")]
        if missing or unknown:
            what = f"missing {missing[0]!r}" if missing else f"unknown key {unknown[0]!r}"
            raise BlankslateError(f"ignore file {path} line {line}: {what}")
        pattern, reason = item["pattern"], item["reason"]
        if not isinstance(pattern, str) or not isinstance(reason, str) or not reason.strip():
            raise BlankslateError(
                f"ignore file {path} line {line}: pattern and reason must be non-empty strings"
            )
        try:
            check_pattern(pattern)
        except ValueError as error:
            raise BlankslateError(f"ignore file {path} line {line}: {error}") from None
        rules.append(Rule(pattern, reason, f"{path} line {line}"))
    return rules


def load_file(path: Path) -> list[Rule]:
    """The rules of an ignore file; a missing file has none."""
    return _rules_of(path, _load_document(path))


def add_rule(path: Path, pattern: str, reason: str) -> bool:
    """Append a rule to the ignore file, keeping everything else as written.

    Returns False (and changes nothing) when the pattern is already there.
    """
    try:
        check_pattern(pattern)
    except ValueError as error:
        raise BlankslateError(str(error)) from None
    if not reason.strip() or "\n" in reason:
        raise BlankslateError("the reason must be one non-empty line")
    _check_writable(path)
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    text = _read_text(path)
    document = _parse_document(path, text)
    existing = _rules_of(path, document)
    if any(rule.pattern == pattern for rule in existing):
        return False
    items = document.get("ignore")
    if items is None:
        items = CommentedSeq()
        document["ignore"] = items
    rule = CommentedMap()
    rule["pattern"] = pattern
    rule["reason"] = reason
    items.append(rule)
    buffer = io.StringIO()
    if len(document) == 1 and len(items) == 1:
        buffer.write(_comments_only(text or ""))  # ruamel keeps no comments of an empty document
    _yaml().dump(document, buffer)
    from blankslate import safefile

    safefile.write_file(path, buffer.getvalue(), make=safefile.fixed(0o755), keep_mode=True)
    return True


def _lstat(path: Path, failure: str) -> os.stat_result | None:
    """`path`'s own status (a symlink is not followed), None when it is missing; another error
    is `failure: <reason>`."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise BlankslateError(f"{failure}: {error.strerror}") from None


def _check_writable(path: Path) -> None:
    """The file `ignore` rewrites (renaming a new file over it) is a regular file or missing:
    a device node, a FIFO, a directory or a symlink named there is refused, never replaced."""
    info = _lstat(path, f"cannot use ignore file {path}")
    if info is None:
        return
    if not stat.S_ISREG(info.st_mode):
        kind = "a symlink" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        raise BlankslateError(
            f"ignore file {path} is {kind}: refusing to replace it (name a regular file)"
        )


def _comments_only(text: str) -> str:
    """`text`, ending with a newline, when it holds only comments, blank lines and a `---`;
    else nothing."""
    lines = text.splitlines()
    if not all(
        not line.strip() or line.lstrip().startswith("#") or line == "---" for line in lines
    ):
        return ""
    return text.rstrip("\n") + "\n" if text.strip() else ""


def default_file(host: str, checkout: Path | None = None) -> Path | None:
    """`hosts/<host>/audit.yaml` when `checkout` (default: the working directory) is a flake
    checkout that has that host, else None. The checkout must be trusted (`check_owner`)."""
    base = checkout if checkout is not None else Path.cwd()
    if (base / "flake.nix").is_file() and (base / "hosts" / host).is_dir():
        found = base / "hosts" / host / "audit.yaml"
        for path in (base, base / "hosts", base / "hosts" / host, found):
            check_owner(path, base)
        return found
    return None


def trusted_uids() -> set[int]:
    """Who may supply rules: this user and root, and under sudo the user who ran sudo (as
    git's safe.directory check allows SUDO_UID)."""
    uids = {os.geteuid(), 0}
    sudo = os.environ.get("SUDO_UID", "")
    if os.geteuid() == 0 and sudo.isdigit():
        uids.add(int(sudo))
    return uids


def check_owner(path: Path, checkout: Path) -> None:
    """Refuse a checkout (or its hosts/ directory or ignore file) owned by another user, as
    git refuses a repository of dubious ownership: its rules would hide what is lost."""
    info = _lstat(path, f"cannot check {path}")
    if info is None:
        return
    if info.st_uid not in trusted_uids():
        raise BlankslateError(
            f"{path} is owned by uid {info.st_uid}, not by you or root: the checkout "
            f"{checkout} does not supply ignore rules (run from your own checkout, or give "
            "--ignore-file)"
        )


def target_file(host: str, ignore_file: Path | None) -> Path:
    """The file `blankslate ignore` edits: --ignore-file, else the checkout's host file."""
    if ignore_file is not None:
        return ignore_file
    found = default_file(host)
    if found is None:
        raise BlankslateError(
            f"no ignore file: give --ignore-file, or run from a flake checkout with hosts/{host}/"
        )
    return found


def rule_file(source: PlanSource, ignore_file: Path | None) -> Path:
    """The file `blankslate ignore` adds to: --ignore-file, else hosts/HOST/ of the checkout,
    HOST being --host, or the plan's host name (the plan is evaluated only then)."""
    host = source.host
    if ignore_file is None and host is None:
        from blankslate import plansource

        host = plansource.load(source, builtin=False).host_name
    return target_file(host or "", ignore_file)


INSTALLED_FILE = Path("/etc/blankslate/audit.yaml")


def collect(plan_ignore: Sequence[str], host: str, ignore_file: Path | None) -> list[Rule]:
    """Every rule for `diff`: the ignore file's (given, the checkout's, or the one the system
    installed from `blankslate.audit.ignoreFile`), the plan's, built-ins."""
    path = ignore_file if ignore_file is not None else default_file(host)
    if path is None and INSTALLED_FILE.exists():
        path = INSTALLED_FILE
    if ignore_file is not None:
        try:
            ignore_file.stat()
        except FileNotFoundError:
            raise BlankslateError(
                f"ignore file {ignore_file} not found (check --ignore-file)"
            ) from None
        except OSError as error:
            raise BlankslateError(
                f"cannot read ignore file {ignore_file}: {error.strerror}"
            ) from None
    from_file = load_file(path) if path is not None else []
    return [*from_file, *plan_rules(plan_ignore), *builtin_rules()]
