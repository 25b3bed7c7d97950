"""Helpers for the subscription tests: forms with their CSRF token, and the mail the outbox worker wrote."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask.testing import FlaskClient
from smtp_support import SmtpSink

from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.outbox.worker import SendWorker

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

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
        SendWorker(self.db, self.settings, concurrency=1, poll_interval=0).run(until_idle=True)
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


def the_welcome(messages: list[EmailMessage], to: str) -> EmailMessage:
    """The one message in `messages`, which must be the welcome mail to `to` (on by default in feedsvc.toml):
    it carries the manage link and the unsubscribe link."""
    [message] = messages
    assert "Welcome to" in message["Subject"] and message["To"] == to, (message["Subject"], message["To"])
    link_in(message, "manage")
    link_in(message, "unsubscribe")
    return message


def link_in(message: EmailMessage, purpose: str) -> str:
    """The path of the first `purpose` link (confirm, manage, unsubscribe) in the message's text part."""
    for match in LINK.finditer(text_of(message)):
        if match.group(1) == purpose:
            return f"/{purpose}/{match.group(2)}"
    raise AssertionError(f"no {purpose} link in the message")


@dataclass
class Live:
    url: str
    sink: SmtpSink
    env: dict[str, str]
    settings: Settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(url: str, processes: list[subprocess.Popen[bytes]], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"a server process exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the server did not start: {log.read_text(errors='replace')[-3000:]}")


@contextmanager
def live_stack(
    settings: Settings, database_url: str, tmp_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Live]:
    """gunicorn (2 workers) and `feedsvc worker` as processes on the test database, mail to an SMTP sink."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with SmtpSink() as sink:
        env = {
            **os.environ,
            "FEEDSVC_CONFIG": str(ROOT / "feedsvc.toml"),
            "FEEDSVC_VAR_DIR": str(settings.var_dir),
            "FEEDSVC_SECRET_KEY": settings.secret_key,
            "FEEDSVC_BASE_URL": url,
            "DATABASE_URL": database_url,
            "FEEDSVC_SMTP_URL": sink.url,
            "FEEDSVC_BIND": f"127.0.0.1:{port}",
            "FEEDSVC_WEB_WORKERS": "2",
            **(extra_env or {}),
        }
        with open(log, "wb") as out:
            web = subprocess.Popen(
                [BIN / "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "feedsvc.web:create_app()"],
                env=env,
                stdout=out,
                stderr=out,
                cwd=ROOT,
            )
            worker = subprocess.Popen([BIN / "feedsvc", "worker", "--poll", "0.2"], env=env, stdout=out, stderr=out)
        processes = [web, worker]
        try:
            _wait_until_up(url, processes, log)
            yield Live(url, sink, env, settings.with_overrides(publication=_with_base(settings, url)))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")[-3000:]


def _with_base(settings: Settings, url: str):

    return replace(settings.publication, base_url=url)
