"""Fixtures for the subscription tests: an app on the test database, its client, and a mailbox."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from subscribe_support import Live, Mailbox, live_stack

from feedsvc.config import Settings
from feedsvc.web import create_app


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings, TESTING=True)
    yield app
    app.extensions["feedsvc.db"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def mailbox(app: Flask, settings: Settings) -> Mailbox:
    return Mailbox(app.extensions["feedsvc.db"], settings)


@pytest.fixture(scope="session")
def require() -> Callable[[bool, str], None]:
    """tests/conftest.py's `require` (skip locally, fail in CI); test modules cannot import a conftest by name."""
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("feedsvc_tests_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.require


@pytest.fixture
def live(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[Live]:
    """gunicorn and `feedsvc worker` as processes on the test database, mail to an SMTP sink."""
    with live_stack(settings, database_url, tmp_path) as stack:
        yield stack
