"""Fixtures for the subscription tests: an app on the test database, its client, and a mailbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from subscribe_support import Mailbox

from feedsvc import create_app
from feedsvc.config import Settings


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
