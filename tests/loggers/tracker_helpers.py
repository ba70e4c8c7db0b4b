"""Helpers the tracker tests import."""

from __future__ import annotations

import importlib
import os

import pytest


def needs(*modules: str, extra: str) -> None:
    """Skip the calling test module when a tracker's package is absent; in CI
    (CI=true, where scripts/test.sh installs the `trackers` extra) fail instead."""
    for m in modules:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            importlib.import_module(m)
        else:
            pytest.importorskip(m, reason=f"{m} is not installed (pip install 'cookbook-cli[{extra}]')")
