"""Shell completion: the scripts `blankslate completion SHELL` prints, and the answers behind them.

The scripts are typer's: each asks the program itself, `_BLANKSLATE_COMPLETE=complete_SHELL
blankslate` with the words typed so far in the environment, and typer answers from the commands
and options of `blankslate.app`. Nothing here writes a file: the Nix package installs the scripts
where each shell finds them (`share/bash-completion/completions/blankslate`,
`share/zsh/site-functions/_blankslate`, `share/fish/vendor_completions.d/blankslate.fish`);
elsewhere, redirect the output there yourself.
"""

from __future__ import annotations

# typer.completion uses these without exporting them; these modules define them.
from typer._completion_classes import completion_init
from typer._completion_shared import get_completion_script

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
    """Answer completion requests in typer's format (its classes, not click's)."""
    completion_init()


def script(shell: str) -> str:
    """The completion script for `shell` (bash, zsh or fish), ending with a newline."""
    if shell not in SHELLS:
        raise BlankslateError(f"no completion for shell {shell!r} (one of: {', '.join(SHELLS)})")
    text = get_completion_script(prog_name=PROGRAM, complete_var=COMPLETE_VAR, shell=shell)
    if shell == "zsh":
        function = f"_{PROGRAM}_completion"
        registration = f"compdef {function} {PROGRAM}"
        if not text.endswith(registration):
            raise BlankslateError(f"typer's zsh script no longer ends with {registration!r}")
        dispatch = _ZSH_DISPATCH.format(program=PROGRAM, function=function)
        text = text.removesuffix(registration) + dispatch
    return text.rstrip("\n") + "\n"
