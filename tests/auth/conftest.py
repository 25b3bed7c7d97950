"""The staff-login tests' app: an injected clock (tests move time, never sleep) and one owner with a password."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from auth_support import add_staff
from builders import make_app
from flask import Flask
from flask.testing import FlaskClient

from feedsvc.config import Settings

OWNER = "owner@example.org"


@dataclass
class Clock:
    """A clock the app reads (FEEDSVC_CLOCK) and the test moves on."""

    now: datetime = field(default_factory=lambda: datetime(2026, 12, 1, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


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
