"""Staff logins for tests: add a member with a password, and log a Flask test client in through the real form.

add_staff(settings.database_url, "owner@example.org", "owner")
log_in(client, "owner@example.org", PASSWORD)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from feedsvc.db.engine import Database
from feedsvc.staff import accounts

PASSWORD = "correct horse battery staple"
OWNER = "owner@example.org"  # the one owner the staff tests log in as
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_staff(database_url_or_db: str | Database, email: str, role: str, password: str = PASSWORD) -> None:
    """Add a staff member with `role` and `password` to the database (a URL, or an open `Database`)."""
    database = database_url_or_db if isinstance(database_url_or_db, Database) else Database(database_url_or_db)
    try:
        with database.session() as session:
            accounts.add(session, email, role, "test", password)
    finally:
        if database is not database_url_or_db:
            database.dispose()


def csrf_from(client: FlaskClient, path: str) -> str:
    """The CSRF token in the form of the page at `path` (fetched with `client`)."""
    page = client.get(path)
    found = _CSRF.search(page.get_data(as_text=True))
    assert found is not None, f"no CSRF token on {path} ({page.status_code})"
    return found.group(1)


def log_in(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    """Log `client` in through /admin/login (CSRF included); AssertionError if the login is refused."""
    token = csrf_from(client, "/admin/login")
    response = client.post("/admin/login", data={"csrf_token": token, "email": email, "password": password})
    assert response.status_code == 302, f"login of {email} refused ({response.status_code})"
    assert "/admin/login" not in response.headers["Location"], f"login of {email} needs a second step"


@dataclass
class Clock:
    """A clock the app reads (FEEDSVC_CLOCK) and the test moves on."""

    now: datetime = field(default_factory=lambda: datetime(2026, 12, 1, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
