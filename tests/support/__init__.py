"""Helpers the tests share, written once: the CLI runner (`runner`), loop devices of an image
(`loops`), findmnt's argv and its fakes for pytest-subprocess (`mounts`), plan writers
(`plans`) and typed constants for hypothesis strategies (`strategies`).

Test files import them relatively, as they import the conftest: ``from ..support.runner import
blankslate`` (pytest runs with ``--import-mode=importlib``, which names each test module after
its path under the rootdir, so ``tests`` is their package)."""
