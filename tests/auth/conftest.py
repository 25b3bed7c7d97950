"""The staff-login tests' app: an injected clock (tests move time, never sleep) and one owner with a password."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from auth_support import OWNER, Clock, add_staff
from builders import make_app
from flask import Flask
from flask.testing import FlaskClient

from feedsvc.config import Settings


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(settings: Settings, clock: Clock) -> Iterator[Flask]:
    with make_app(settings, FEEDSVC_CLOCK=clock) as app:
        yield app


@pytest.fixture
def client(app: Flask, settings: Settings) -> FlaskClient:
    """A browser (not logged in) on an app with one owner, OWNER, whose password is auth_support.PASSWORD."""
    add_staff(settings.database_url, OWNER, "owner")
    return app.test_client()
