"""Every unit test runs under pytest-subprocess: a command it did not register fails the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_subprocess import FakeProcess

from blankslate import process


@pytest.fixture(autouse=True)
def no_real_commands(fp: FakeProcess) -> Iterator[FakeProcess]:
    yield fp
    process.settings.dry_run = False
