"""The audit's renderings are streamed: each document is written entry by entry, says what
it said before it streamed (golden files captured from the earlier renderings, and a plain
reference built from the same entries), and its writer's memory does not grow with the
number of entries."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from blankslate import render

from .audit_trees import generated_report

GOLDEN = Path(__file__).parent / "golden"


def golden_documents(seed: int) -> dict[str, str]:
    old_root = "2026-01-01T00:00:00" if seed == 8 else None
    report = generated_report(seed, 400, old_root=old_root)
    return {
        "json": render.render_json(report),
        "full.json": render.render_json(report, full=True),
        "yaml": render.render_yaml(report),
        "full.yaml": render.render_yaml(report, full=True),
        "txt": render.render_text(report),
        "full.txt": render.render_text(report, full=True),
        "all.txt": render.render_text(report, all_entries=True, style=render.COLOURED),
        "prom": render.render_metrics(report, 1700000000.0),
    }


@pytest.mark.parametrize("seed", [7, 8])
def test_every_rendering_equals_the_golden_one_byte_for_byte(seed: int) -> None:
    for suffix, text in golden_documents(seed).items():
        expected = (GOLDEN / f"stream-{seed}.{suffix}").read_bytes()
        assert text.encode("utf-8", "surrogateescape") == expected, suffix
