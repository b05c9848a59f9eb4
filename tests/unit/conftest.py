"""Every unit test runs under pytest-subprocess: a command it did not register fails the test."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytest_subprocess import FakeProcess

from blankslate import cli


@pytest.fixture(autouse=True)
def no_real_commands(fp: FakeProcess) -> FakeProcess:
    return fp


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    """Runs `blankslate ARGS...` through `cli.main`; returns its exit status."""

    def run(*args: str) -> int:
        monkeypatch.setattr("sys.argv", ["blankslate", *args])
        with pytest.raises(SystemExit) as exited:
            cli.main()
        code = exited.value.code
        return code if isinstance(code, int) else 0 if code is None else 1

    return run


@pytest.fixture(autouse=True)
def view_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root beneath its mounts is the directory itself: no namespace, no mount (the
    integration tests make the real one)."""
    from blankslate import beneath

    monkeypatch.setattr(beneath, "in_view", lambda root, work: work(root))
