"""The one error type: the CLI prints it as `error: <message>` and exits 1."""


class BlankslateError(Exception):
    """A failure the user can act on; its message is one line."""
