"""Helpers for the subscription tests: forms with their CSRF token, and the mail the outbox worker wrote."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask.testing import FlaskClient

from feedsvc.config import Settings
from feedsvc.db import Database
from feedsvc.delivery import Worker

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"https?://[^\s<>\"]+/(confirm|manage|unsubscribe)/([A-Za-z0-9._-]+)")


def csrf(client: FlaskClient, path: str = "/subscribe") -> str:
    """The CSRF token of the form at `path` (sets the session cookie)."""
    response = client.get(path)
    match = CSRF.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({response.status_code})"
    return match.group(1)


def signup(client: FlaskClient, email: str, sections: list[str] | None = None, **extra: str):
    """POST the sign-up form as a browser would (with the page's CSRF token)."""
    data: dict[str, object] = {"csrf_token": csrf(client), "email": email, **extra}
    if sections is not None:
        data["sections"] = sections
    return client.post("/subscribe", data=data)


class Mailbox:
    """Runs the outbox worker (mail goes to .eml files) and reads what it wrote."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
        self.folder: Path = settings.mail_dir
        self.seen: set[Path] = set()

    def deliver(self) -> list[EmailMessage]:
        """Send everything queued; the messages that arrived since the last call, oldest first."""
        Worker(self.db, self.settings, poll_interval=0).drain()
        new = sorted((p for p in self.folder.glob("*.eml") if p not in self.seen), key=lambda p: p.stat().st_mtime_ns)
        self.seen.update(new)
        return [parse(p.read_bytes()) for p in new]


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return body.get_content()


def link_in(message: EmailMessage, purpose: str) -> str:
    """The path of the first `purpose` link (confirm, manage, unsubscribe) in the message's text part."""
    for match in LINK.finditer(text_of(message)):
        if match.group(1) == purpose:
            return f"/{purpose}/{match.group(2)}"
    raise AssertionError(f"no {purpose} link in the message")
