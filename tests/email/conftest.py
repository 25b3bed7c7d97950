"""Fixtures for the newsletter email tests: the parsed seed, one reader's links, a hostile issue."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from email_support import HOSTILE, MANAGE, UNSUBSCRIBE

from feedsvc.config import Publication
from feedsvc.content.reader import Issue, parse, parse_bytes
from feedsvc.mail import message as mail_message

ROOT = Path(__file__).resolve().parents[2]


def _shared_conftest() -> ModuleType:
    """tests/conftest.py as a module (a test module cannot import it by name: every conftest is "conftest")."""
    spec = importlib.util.spec_from_file_location("feedsvc_email_shared_conftest", ROOT / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def require() -> Callable[[bool, str], None]:
    """The shared `require`: skip when something is missing locally, fail in CI."""
    return _shared_conftest().require


@pytest.fixture(scope="session")
def require_tool() -> Callable[[str], str]:
    """The shared `require_tool`: the path of an executable; skip without it locally, fail in CI."""
    return _shared_conftest().require_tool


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def seed(publication: Publication, seed_path: Path) -> Issue:
    return parse(seed_path, publication)


@pytest.fixture
def links() -> mail_message.Links:
    return mail_message.Links(manage=MANAGE, unsubscribe=UNSUBSCRIBE)


@pytest.fixture(scope="session")
def hostile(publication: Publication) -> Issue:
    return parse_bytes(HOSTILE.encode(), publication, source="hostile.md")
