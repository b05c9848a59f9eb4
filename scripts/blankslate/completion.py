"""Shell completion: the scripts `blankslate completion SHELL` prints, and the answers behind them.

The scripts are typer's: each asks the program itself, `_BLANKSLATE_COMPLETE=complete_SHELL
blankslate` with the words typed so far in the environment, and typer answers from the commands
and options of `blankslate.app`. Nothing here writes a file: the Nix package installs the scripts
where each shell finds them (`share/bash-completion/completions/blankslate`,
`share/zsh/site-functions/_blankslate`, `share/fish/vendor_completions.d/blankslate.fish`);
elsewhere, redirect the output there yourself.
"""

from __future__ import annotations

import contextlib
import io

import typer.completion
import typer.main
from typer.core import TyperCommand

from blankslate.errors import BlankslateError

PROGRAM = "blankslate"
COMPLETE_VAR = "_BLANKSLATE_COMPLETE"
SHELLS = ("bash", "zsh", "fish")

# zsh loads `_blankslate` from $fpath as the body of the function `_blankslate`: run that way, it
# completes at once; sourced (`source <(blankslate completion zsh)`), it only registers.
_ZSH_DISPATCH = """\
if [ "$funcstack[1]" = "_{program}" ]; then
  {function} "$@"
else
  compdef {function} {program}
fi"""


def register() -> None:
    """Answer completion requests in typer's format (its classes, not click's).

    typer registers its classes when it makes an app's completion options (`add_completion=True`:
    --install-completion and --show-completion); `blankslate` shows neither (nothing edits rc
    files), so it makes them here and drops them."""
    typer.main.get_install_completion_arguments()


def script(shell: str) -> str:
    """The completion script for `shell` (bash, zsh or fish), ending with a newline."""
    if shell not in SHELLS:
        raise BlankslateError(f"no completion for shell {shell!r} (one of: {', '.join(SHELLS)})")
    # What `blankslate --show-completion SHELL` would print, had it typer's option: its
    # callback, for a program named `blankslate` (the name gives the variable, COMPLETE_VAR).
    _install, show = typer.main.get_install_completion_arguments()
    context = typer.Context(TyperCommand(PROGRAM), info_name=PROGRAM)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            typer.completion.show_callback(context, show, shell)
        except SystemExit as exit_:  # the callback ends the program after printing
            if exit_.code not in (0, None):
                raise BlankslateError(f"typer gave no completion script for {shell}") from None
    text = printed.getvalue().strip()
    if f"{COMPLETE_VAR}=complete_{shell}" not in text:
        raise BlankslateError(f"typer's {shell} script does not ask {COMPLETE_VAR}")
    if shell == "zsh":
        function = f"_{PROGRAM}_completion"
        registration = f"compdef {function} {PROGRAM}"
        if not text.endswith(registration):
            raise BlankslateError(f"typer's zsh script no longer ends with {registration!r}")
        dispatch = _ZSH_DISPATCH.format(program=PROGRAM, function=function)
        text = text.removesuffix(registration) + dispatch
    return text.rstrip("\n") + "\n"
