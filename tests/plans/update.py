"""Rewrite every golden plan fixture as Nix evaluates it (run by hand from the checkout).

    .venv/bin/python tests/plans/update.py          # rewrite the fixtures that differ
    .venv/bin/python tests/plans/update.py --check  # only report them (exit 1 if any)

The fixtures and what each is evaluated from (a host of hosts/ plus a Nix module) are the
table tests/support/plans.py FIXTURES, which tests/nix/test_plan_fixtures.py checks too. A
fixture whose content already equals its evaluation is left byte for byte as it is; one that
differs is rewritten keeping its keys in the order the file had them (new keys last)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.plans import (  # noqa: E402
    FIXTURES,
    differences,
    evaluate_fixtures,
    ordered_like,
    render,
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report differences (exit 1)")
    args = parser.parse_args(argv)
    try:
        evaluated = evaluate_fixtures()
    except RuntimeError as error:
        print(f"update.py: {error}", file=sys.stderr)
        return 1
    stale = 0
    for fixture, value in zip(FIXTURES, evaluated, strict=True):
        name = fixture.path.relative_to(REPO)
        old = json.loads(fixture.path.read_text()) if fixture.path.exists() else None
        if old == value:
            continue
        stale += 1
        where = ", ".join(differences(value, old)[:8]) if old is not None else "missing"
        if args.check:
            print(f"{name}: differs from its evaluation: {where}")
            continue
        fixture.path.write_text(render(fixture, ordered_like(value, old)))
        print(f"{name}: rewritten ({where})")
    if args.check and stale:
        print(f"{stale} fixture(s) differ: run .venv/bin/python tests/plans/update.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
