"""`blankslate pin`: a Nix file of tarball pins for a configuration.nix that does not use flakes.

It pins nix-community/impermanence (and, when asked, this project's own source) by URL and
sha256, computed with `nix-prefetch-url --unpack`. A branch or tag name is first resolved to its
commit with `git ls-remote`: a pin naming a branch breaks as soon as the branch moves, because
the tarball's hash no longer matches. The file is written atomically and only after every pin
has been fetched, so a failure leaves the previous file as it was.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from blankslate import nix, nixtext, process, safefile
from blankslate.errors import BlankslateError

IMPERMANENCE_REPOSITORY = "https://github.com/nix-community/impermanence"
DEFAULT_OUTPUT = Path("pins.nix")
PINS_FILE_MODE = 0o644

_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_FULL_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# git check-ref-format's rules, minus the rare corner cases: no space, control character,
# ~ ^ : ? * [ \ or "..", no leading "-" or "/", no trailing "/", "." or ".lock".
_REF_NAME = re.compile(
    r"^(?!-)(?!/)(?!.*\.\.)(?!.*//)(?!.*@\{)[^\x00-\x20\x7f~^:?*\[\\]+(?<![/.])$"
)
_NIX_BASE32_SHA256 = re.compile(r"^[0-9a-df-np-sv-z]{52}$")
_GITHUB_REPOSITORY = re.compile(r"^/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class Pin:
    """One `builtins.fetchTarball` entry of the pins file."""

    name: str
    url: str
    sha256: str
    revision: str  # what the user asked for (or the branch followed), for the header


def git_ls_remote(repository: str, ref: str) -> list[str]:
    return ["git", "ls-remote", "--", repository, ref]


def check_revision(revision: str, what: str) -> str:
    """A commit (7-40 hex digits) or a ref name; anything else is refused before running git."""
    if _COMMIT.match(revision) or (_REF_NAME.match(revision) and not revision.endswith(".lock")):
        return revision
    raise BlankslateError(
        f"{what} {revision!r} is not a revision (give a commit hash or a branch or tag name)"
    )


def check_url(url: str, what: str) -> str:
    """An http(s) URL with a host, nothing that could break out of a Nix string or an argv."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise BlankslateError(f"{what} {url!r} is not an http(s) URL")
    if re.search(r'[\x00-\x20\x7f"\\$`]', url):
        raise BlankslateError(f"{what} {url!r} contains a space, quote or other unsafe character")
    return url


def is_tarball_url(url: str) -> bool:
    return urlsplit(url).path.endswith((".tar.gz", ".tgz"))


def github_repository(url: str) -> str | None:
    """ "https://github.com/owner/repo(.git)(/)" -> "https://github.com/owner/repo", else None."""
    parts = urlsplit(url)
    match = _GITHUB_REPOSITORY.match(parts.path)
    if parts.netloc.lower() != "github.com" or match is None or parts.query or parts.fragment:
        return None
    return f"https://github.com/{match['owner']}/{match['repo']}"


def github_tarball_url(repository: str, commit: str) -> str:
    return f"{repository}/archive/{commit}.tar.gz"


def parse_ls_remote(text: str, ref: str) -> str | None:
    """The commit `ref` names in `git ls-remote` output, preferring as `git rev-parse` does.

    An annotated tag is listed twice; its peeled line ("refs/tags/v1^{}") names the commit.
    """
    commits = {}
    for line in text.splitlines():
        listed_commit, _, name = line.partition("\t")
        commits[name.strip()] = listed_commit.strip()
    for candidate in (
        f"{ref}^{{}}",
        ref,
        f"refs/{ref}^{{}}",
        f"refs/{ref}",
        f"refs/tags/{ref}^{{}}",
        f"refs/tags/{ref}",
        f"refs/heads/{ref}",
    ):
        commit = commits.get(candidate)
        if commit and _FULL_COMMIT.match(commit):
            return commit
    return None


def failure_reason(result: process.Result, url: str) -> str:
    """process.failure_reason without its "error:" prefix or the (known) URL."""
    if not result.stderr.strip():
        return "no message"
    reason = process.failure_reason(result)
    reason = reason.removeprefix("error:").removeprefix("fatal:").strip()
    return reason.replace(f"'{url}'", "it").replace(f"'{url}/'", "it")


def resolve_commit(repository: str, revision: str) -> str:
    """A commit hash stays as given; a branch or tag (or HEAD) becomes the commit it names now."""
    if _COMMIT.match(revision):
        return revision
    listed = process.probe(git_ls_remote(repository, revision), check=False)
    if listed.returncode != 0:
        reason = failure_reason(listed, repository)
        raise BlankslateError(f"cannot ask {repository} for {revision}: {reason}")
    commit = parse_ls_remote(listed.stdout, revision)
    if commit is None:
        raise BlankslateError(f"{repository} has no branch or tag {revision!r}")
    return commit


def prefetch_sha256(url: str) -> str:
    """The sha256 (Nix base32) of the unpacked tarball, which is what fetchTarball checks."""
    fetched = process.probe(nix.prefetch_url_unpack(url), check=False)
    if fetched.returncode != 0:
        raise BlankslateError(f"cannot fetch {url}: {failure_reason(fetched, url)}")
    printed = fetched.stdout.split()
    sha256 = printed[-1] if printed else ""
    if not _NIX_BASE32_SHA256.match(sha256):
        raise BlankslateError(f"nix-prefetch-url printed no sha256 for {url} (got {sha256!r})")
    return sha256


def _fetch_pin(name: str, url: str, revision: str, output: Path) -> Pin:
    try:
        return Pin(name, url, prefetch_sha256(url), revision)
    except BlankslateError as error:
        raise BlankslateError(f"{name}: {error} ({output} left unchanged)") from None


def _resolve(name: str, repository: str, revision: str, output: Path) -> str:
    try:
        return resolve_commit(repository, revision)
    except BlankslateError as error:
        raise BlankslateError(f"{name}: {error} ({output} left unchanged)") from None


def render(pins: Sequence[Pin], command: str) -> str:
    """The pins file: a header naming the command, then one fetchTarball per pin."""
    lines = [f"# Written by `{command}`; rerun it to update, do not edit by hand."]
    lines += [f"# {pin.name}: {pin.revision}" for pin in pins]
    lines.append("{")
    for pin in pins:
        lines += [
            f"  {pin.name} = builtins.fetchTarball {{",
            f"    url = {nixtext.string(pin.url)};",
            f"    sha256 = {nixtext.string(pin.sha256)};",
            "  };",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str, mode: int = PINS_FILE_MODE) -> None:
    """Replace `path` in one step: a reader sees the old file or the new one, never a part."""
    if not path.parent.is_dir():
        raise BlankslateError(f"cannot write {path}: {path.parent} is not a directory")
    safefile.write_file(path, text, mode=mode)


def command_line(
    output: Path,
    impermanence_revision: str | None,
    source_url: str | None,
    source_revision: str | None,
) -> str:
    words = ["blankslate", "pin"]
    if output != DEFAULT_OUTPUT:
        words += ["--output", str(output)]
    if impermanence_revision is not None:
        words += ["--impermanence-rev", impermanence_revision]
    if source_url is not None and source_revision is not None:
        words += ["--source-url", source_url, "--source-rev", source_revision]
    return process.format_command(words)


def pin(
    output: Path = DEFAULT_OUTPUT,
    impermanence_revision: str | None = None,
    source_url: str | None = None,
    source_revision: str | None = None,
) -> list[Pin]:
    """Fetch every pin, then write `output` atomically; return the pins written.

    Without a revision, impermanence's default branch (its HEAD) is pinned at today's commit.
    `source_url` is a GitHub repository (its archive of `source_revision` is pinned) or a full
    .tar.gz URL (pinned as is; `source_revision` then only documents it in the header).
    """
    # Check every input before running anything, so a typo costs no download.
    if (source_url is None) != (source_revision is None):
        raise BlankslateError("give --source-url and --source-rev together, or neither")
    if impermanence_revision is not None:
        check_revision(impermanence_revision, "--impermanence-rev")
    source_repository = None
    if source_url is not None and source_revision is not None:
        check_url(source_url, "--source-url")
        check_revision(source_revision, "--source-rev")
        if not is_tarball_url(source_url):
            source_repository = github_repository(source_url)
            if source_repository is None:
                raise BlankslateError(
                    f"--source-url {source_url!r} is neither https://github.com/OWNER/REPO "
                    "nor a URL ending in .tar.gz"
                )

    followed = impermanence_revision or "HEAD"
    commit = _resolve("impermanence", IMPERMANENCE_REPOSITORY, followed, output)
    described = commit if followed == commit else f"{followed} = {commit}"
    pins = [
        _fetch_pin(
            "impermanence",
            github_tarball_url(IMPERMANENCE_REPOSITORY, commit),
            f"{IMPERMANENCE_REPOSITORY} {described}",
            output,
        )
    ]
    if source_url is not None and source_revision is not None:
        if source_repository is None:
            pins.append(
                _fetch_pin("blankslate", source_url, f"{source_url} {source_revision}", output)
            )
        else:
            commit = _resolve("blankslate", source_repository, source_revision, output)
            described = commit if source_revision == commit else f"{source_revision} = {commit}"
            pins.append(
                _fetch_pin(
                    "blankslate",
                    github_tarball_url(source_repository, commit),
                    f"{source_repository} {described}",
                    output,
                )
            )
    text = render(pins, command_line(output, impermanence_revision, source_url, source_revision))
    write_atomically(output, text)
    return pins
