"""Fixtures for the subscription tests: an app on the test database, its client, and a mailbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import make_app
from flask import Flask
from flask.testing import FlaskClient
from subscribe_support import Live, Mailbox, live_stack

from feedsvc.config import Settings


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    with make_app(settings) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def mailbox(app: Flask, settings: Settings) -> Mailbox:
    return Mailbox(app.extensions["feedsvc.db"], settings)


@pytest.fixture
def live(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[Live]:
    """gunicorn and `feedsvc worker` as processes on the test database, mail to an SMTP sink."""
    with live_stack(settings, database_url, tmp_path) as stack:
        yield stack
