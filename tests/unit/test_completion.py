"""Shell completion: `blankslate completion SHELL` prints a script, the program answers it.

The scripts are written at build time by the Nix package (package.nix, postInstall), with no home
directory; nothing installs completion into a user's rc files.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from blankslate import completion
from blankslate.app import app
from blankslate.errors import BlankslateError

SHELLS = ["bash", "zsh", "fish"]


@pytest.mark.parametrize("shell", SHELLS)
def test_completion_prints_a_script_for_each_shell(
    shell: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOME", raising=False)  # as in the Nix build
    result = CliRunner().invoke(app, ["completion", shell], prog_name="blankslate")
    assert result.exit_code == 0, result.output
    script = result.stdout
    assert script == completion.script(shell)
    assert script.endswith("\n") and len(script.splitlines()) >= 1
    # It asks the program, in the protocol the program answers below.
    assert f"_BLANKSLATE_COMPLETE=complete_{shell}" in script
    registration = {
        "bash": "complete -o default -F _blankslate_completion blankslate",
        "zsh": "compdef _blankslate_completion blankslate",
        "fish": "complete --command blankslate ",
    }[shell]
    assert registration in script


def test_zsh_script_completes_when_autoloaded_from_fpath() -> None:
    """site-functions/_blankslate runs as the function _blankslate: it completes on the first
    Tab instead of only registering itself."""
    lines = completion.script("zsh").splitlines()
    assert lines[0] == "#compdef blankslate"
    assert lines[-5:] == [
        'if [ "$funcstack[1]" = "_blankslate" ]; then',
        '  _blankslate_completion "$@"',
        "else",
        "  compdef _blankslate_completion blankslate",
        "fi",
    ]


def test_unknown_shell_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["completion", "tcsh"], prog_name="blankslate")
    assert result.exit_code == 2
    assert "tcsh" in result.output
    with pytest.raises(BlankslateError, match="tcsh"):
        completion.script("tcsh")


def test_no_install_completion_option() -> None:
    """Nothing edits the user's rc files: typer's --install-completion is off."""
    result = CliRunner().invoke(app, ["--help"], prog_name="blankslate")
    assert result.exit_code == 0
    assert "completion" in result.stdout  # the command that prints the script
    assert "--install-completion" not in result.stdout
    assert "--show-completion" not in result.stdout
    assert CliRunner().invoke(app, ["--install-completion", "bash"]).exit_code == 2


@pytest.mark.parametrize(
    ("shell", "environment", "expected"),
    [
        ("bash", {"COMP_WORDS": "blankslate di", "COMP_CWORD": "1"}, "diff\ndisko\n"),
        (
            "bash",
            {"COMP_WORDS": "blankslate diff --format ", "COMP_CWORD": "3"},
            "text\njson\nyaml\n",
        ),
        (
            "zsh",
            {"_TYPER_COMPLETE_ARGS": "blankslate rec"},
            '_arguments \'*: :(("recover":"Copy a path back out of a kept old root or..."))\'\n',
        ),
        (
            "fish",
            {
                "_TYPER_COMPLETE_ARGS": "blankslate completion ",
                "_TYPER_COMPLETE_FISH_ACTION": "get-args",
            },
            "bash\nzsh\nfish\n",
        ),
    ],
)
def test_the_program_answers_its_scripts(
    shell: str,
    environment: dict[str, str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    run_cli: Callable[..., int],
) -> None:
    """What each script runs (`_BLANKSLATE_COMPLETE=complete_SHELL blankslate`, no arguments):
    the candidates in the format that shell's script reads."""
    monkeypatch.setenv(completion.COMPLETE_VAR, f"complete_{shell}")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert run_cli() == 0
    assert capsys.readouterr().out == expected
