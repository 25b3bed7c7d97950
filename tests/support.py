"""What every test area shares and may import: the repository's paths and the skip-locally, fail-in-CI guards.

Test modules import it as `support` (pytest puts tests/ on sys.path, see `pythonpath` in pyproject.toml);
fixtures live in tests/conftest.py, builders of settings and apps in tests/builders.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "issues" / "2024-01-22-398.md"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str) -> None:
    """Skip when `what` is missing on a developer machine; in CI (CI=true) nothing is skipped: fail."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI", pytrace=False)
    pytest.skip(f"{what} is not available")


def require_tool(name: str) -> str:
    """The path of an executable, or skip (fail in CI) when it is missing."""
    path = shutil.which(name)
    require(path is not None, f"the {name} executable")
    return path or ""
