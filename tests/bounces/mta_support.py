"""Real mail servers for the intake tests, each started with its own configuration in a folder of its own.

    with Dovecot(passwords={"bounce": "secret"}) as imap:      # imaps on imap.imaps_port, STARTTLS on imap.port
        imap.append("bounce", "secret", raw)
        imap.url("bounce", "secret")                            # imaps://bounce:secret@127.0.0.1:PORT/INBOX
    with Postfix(transport={"example.com": "smtp:[127.0.0.1]:2525"}) as mta:
        mta.port                                                # its smtpd on loopback

Also: `sent_rows` (subscribers with an issue mail recorded as sent, as the worker leaves them), the report
makers (`dsn`, `arf`, `auto_reply`, `letter`) and `BounceServer` (`feedsvc bounces serve` as a process).
Folders are made with mkdtemp (mode 755): the servers' unprivileged processes must reach them, which they cannot
inside pytest's private tmp_path. Ports are chosen by the OS.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from builders import cli_env
from smtp_support import free_port, self_signed_certificate
from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from support import ROOT

from feedsvc.config import Settings
from feedsvc.db.engine import Database, utcnow
from feedsvc.db.models import ACTIVE, OutboxMessage, Subscriber
from feedsvc.subscribers import subscriptions

BOUNCE_ADDRESS = "bounces@bounces.example.org"
ISSUE = 398
NOBODY = 65534  # Dovecot keeps its mail as this user: it refuses root


def _folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


def _wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process ended with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _start_daemon(argv: list[str], log: Path) -> None:
    """Run a command that leaves a daemon behind; its output goes to a file (a pipe would stay open with the
    daemon, and reading it would never end)."""
    with log.open("wb") as out:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=False, timeout=60)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {log.read_text(errors='replace')}")


# ------------------------------------------------------------------------------------------------- Dovecot


class _Daemon:
    """A server the test starts and stops: `with Daemon(...) as running:`; a failed start stops what it began."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Dovecot(_Daemon):
    """Debian's Dovecot on 127.0.0.1: passwd-file users, maildir, a certificate made by openssl."""

    def __init__(self, passwords: dict[str, str], *, capabilities: str = "") -> None:
        self.passwords = passwords
        self.capabilities = capabilities  # imap_capability, to hide MOVE for instance
        self.folder = _folder("feedsvc-dovecot-")
        self.port = 0
        self.imaps_port = 0

    @property
    def ca_file(self) -> Path:
        return self.folder / "cert.pem"

    def url(self, user: str, password: str, *, starttls: bool = False, folder: str = "INBOX") -> str:
        if starttls:
            return f"imap://{user}:{password}@127.0.0.1:{self.port}/{folder}"
        return f"imaps://{user}:{password}@127.0.0.1:{self.imaps_port}/{folder}"

    def start(self) -> Dovecot:
        d = self.folder
        self_signed_certificate(d)
        (d / "passwd").write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.passwords.items()), encoding="utf-8")
        (d / "home").mkdir()
        os.chown(d / "home", NOBODY, NOBODY)
        self.port, self.imaps_port = free_port(), free_port()
        capability = f"imap_capability = {self.capabilities}\n" if self.capabilities else ""
        (d / "dovecot.conf").write_text(
            f"""base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={NOBODY} gid={NOBODY} home={d}/home/%u
}}
mail_location = maildir:~/Maildir
default_internal_user = dovecot
default_login_user = dovenull
{capability}service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
""",
            encoding="utf-8",
        )
        _start_daemon(["/usr/sbin/dovecot", "-c", str(d / "dovecot.conf")], d / "start.log")
        _wait_for_port(self.imaps_port)
        return self

    def stop(self) -> None:
        pid_file = self.folder / "run" / "master.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and pid_file.exists():
                time.sleep(0.05)
        shutil.rmtree(self.folder, ignore_errors=True)

    def client(self, user: str) -> imaplib.IMAP4_SSL:
        """A logged-in client of the test's own (not feedsvc's)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port, ssl_context=context)
        imap.login(user, self.passwords[user])
        return imap

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        imap = self.client(user)
        try:
            typ, data = imap.append(folder, None, None, raw)
            assert typ == "OK", data
        finally:
            imap.logout()

    def messages(self, user: str, folder: str = "INBOX") -> list[tuple[bytes, set[str]]]:
        """Every message in `folder` (read with PEEK) and its flags; [] when the folder does not exist."""
        imap = self.client(user)
        try:
            typ, _ = imap.select(f'"{folder}"', readonly=True)
            if typ != "OK":
                return []
            typ, data = imap.uid("SEARCH", "ALL")
            found = []
            for uid in (data[0] or b"").split():
                typ, fetched = imap.uid("FETCH", uid.decode(), "(FLAGS BODY.PEEK[])")
                head, body = fetched[0]
                flags = set(imaplib.ParseFlags(head)) if b"FLAGS" in head else set()
                found.append((bytes(body), {f.decode() for f in flags}))
            return found
        finally:
            imap.logout()


# ------------------------------------------------------------------------------------------------- Postfix

_MASTER = """\
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix(_Daemon):
    """Debian's Postfix on 127.0.0.1 with its own config, queue and data folders; `transport` is its transport map.

    Retries are made short: `maximal_queue_lifetime = 0` means a 4xx reply is tried once and then returned to the
    sender as a failure (a DSN with the 4.x.x status), so a test sees it in a second instead of after five days.
    """

    def __init__(self, transport: dict[str, str]) -> None:
        self.transport = transport
        self.folder = _folder("feedsvc-postfix-")
        self.port = 0

    @property
    def config(self) -> Path:
        return self.folder / "conf"

    @property
    def log(self) -> str:
        path = self.folder / "postfix.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def start(self) -> Postfix:
        d = self.folder
        self.config.mkdir()
        (d / "queue").mkdir()
        (d / "data").mkdir()
        shutil.chown(d / "data", "postfix")
        for name in ("postfix-files", "dynamicmaps.cf"):
            shutil.copy(Path("/etc/postfix") / name, self.config / name)
        for name in ("postfix-files.d", "dynamicmaps.cf.d"):
            if (Path("/etc/postfix") / name).is_dir():
                shutil.copytree(Path("/etc/postfix") / name, self.config / name)
        (self.config / "transport").write_text(
            "".join(f"{domain} {nexthop}\n" for domain, nexthop in self.transport.items()), encoding="utf-8"
        )
        self.port = free_port()
        (self.config / "master.cf").write_text(_MASTER.format(listen=f"127.0.0.1:{self.port}"), encoding="utf-8")
        (self.config / "main.cf").write_text(
            f"""compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
meta_directory = {self.config}
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.feedsvc.test
mydomain = feedsvc.test
myorigin = $myhostname
mydestination =
local_transport = error:no local delivery here
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
transport_maps = texthash:{self.config}/transport
relayhost =
default_transport = error:only the transport map's domains here
smtp_tls_security_level = none
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
maillog_file_prefixes = {d}
maillog_file = {d}/postfix.log
maximal_queue_lifetime = 0
bounce_queue_lifetime = 0
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = 0
notify_classes =
biff = no
""",
            encoding="utf-8",
        )
        _start_daemon(["/usr/sbin/postfix", "-c", str(self.config), "start"], d / "start.log")
        _wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if (self.config / "main.cf").exists():
            subprocess.run(
                ["/usr/sbin/postfix", "-c", str(self.config), "stop"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
                timeout=30,
            )
            pid_file = self.folder / "queue" / "pid" / "master.pid"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and pid_file.exists() and pid_file.read_text().strip():
                try:
                    os.kill(int(pid_file.read_text().strip()), 0)
                except (ProcessLookupError, ValueError):
                    break
                time.sleep(0.1)
        shutil.rmtree(self.folder, ignore_errors=True)


# ------------------------------------------------------------------------------ feedsvc as the test runs it


def bounce_config(tmp_path: Path) -> Path:
    """A copy of the real feedsvc.toml with `[bounces] return_path = BOUNCE_ADDRESS` (VERP on)."""
    text = (ROOT / "feedsvc.toml").read_text(encoding="utf-8")
    assert "[bounces]" not in text, "feedsvc.toml has a [bounces] table now: set return_path through it"
    path = tmp_path / "feedsvc-bounces.toml"
    path.write_text(f'{text}\n[bounces]\nreturn_path = "{BOUNCE_ADDRESS}"\n', encoding="utf-8")
    return path


def with_return_path(settings: Settings) -> Settings:
    """`settings` with VERP on, as `bounce_config` makes them for a subprocess."""
    from dataclasses import replace

    return settings.with_overrides(publication=replace(settings.publication, return_path=BOUNCE_ADDRESS))


def process_env(settings: Settings, config: Path, **extra: str) -> dict[str, str]:
    """The environment of a `feedsvc` process on `settings` with `config` as its feedsvc.toml."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_") and k != "DATABASE_URL"}
    env.update(cli_env(settings))
    env.update(FEEDSVC_CONFIG=str(config), FEEDSVC_TEMPLATES_DIR=str(settings.templates_dir), **extra)
    return env


def feedsvc_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("feedsvc")), *args]


class BounceServer:
    """`feedsvc bounces serve` as a process of its own, on a port the OS chose."""

    def __init__(self, env: dict[str, str], *, smtp: bool = False) -> None:
        self.env = env
        self.smtp = smtp
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="feedsvc-bounces-serve-", suffix=".log")[1])

    @property
    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def start(self) -> BounceServer:
        self.port = free_port()
        args = ["bounces", "serve", "--port", str(self.port), *(["--smtp"] if self.smtp else [])]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(feedsvc_command(*args), env=self.env, stdout=log, stderr=log)
        _wait_for_port(self.port, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> BounceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)


# --------------------------------------------------------------------------------- mail we sent, and reports


@dataclass(frozen=True)
class SentRow:
    """An issue mail recorded as sent: its outbox row, subscriber and Message-ID."""

    outbox_id: int
    subscriber_id: int
    recipient: str
    message_id: str


def add_readers(database: Database, recipients: list[str], sections: tuple[str, ...] = ("industry",)) -> dict[str, int]:
    """Active subscribers of `sections`; address -> id."""
    now = utcnow()
    with database.session() as session:
        session.execute(
            insert(Subscriber),
            [
                {
                    "email": email,
                    "status": ACTIVE,
                    "source": "test",
                    "lang": "zh-CN",
                    "token_version": 1,
                    "bounce_count": 0,
                    "created_at": now,
                    "updated_at": now,
                    "confirmed_at": now,
                }
                for email in recipients
            ],
        )
        chosen = select(Subscriber.email, Subscriber.id).where(Subscriber.email.in_(recipients))
        ids = {str(email): int(id_) for email, id_ in session.execute(chosen)}
        subscriptions.set_sections(session, {ids[e]: sections for e in recipients})
        return ids


def sent_rows(database: Database, recipients: list[str], *, issue: int = ISSUE) -> dict[str, SentRow]:
    """Active subscribers, each with one issue mail in the outbox marked sent (as a worker leaves it)."""
    ids = add_readers(database, recipients)
    now = utcnow()
    with database.session() as session:
        session.execute(
            insert(OutboxMessage),
            [
                {
                    "kind": "issue",
                    "priority": 100,
                    "subscriber_id": ids[email],
                    "issue_number": issue,
                    "sections": "industry",
                    "recipient": email,
                    "state": "sent",
                    "attempts": 1,
                    "next_attempt_at": now - timedelta(minutes=5),
                    "message_id": f"<{issue}.{ids[email]}.test@example.org>",
                    "sent_at": now - timedelta(minutes=5),
                    "created_at": now,
                    "updated_at": now,
                }
                for email in recipients
            ],
        )
        return rows_of(session, recipients, issue)


def rows_of(session: Session, recipients: list[str], issue: int = ISSUE) -> dict[str, SentRow]:
    """The outbox rows of `issue` for `recipients`."""
    rows = session.execute(
        select(OutboxMessage.id, OutboxMessage.subscriber_id, OutboxMessage.recipient, OutboxMessage.message_id).where(
            OutboxMessage.recipient.in_(recipients), OutboxMessage.issue_number == issue
        )
    )
    return {r.recipient: SentRow(r.id, r.subscriber_id, r.recipient, r.message_id or "") for r in rows}


def lmtp_exchange(port: int, mail_from: str, recipients: list[str], data: bytes, *, lmtp: bool = True) -> list[str]:
    """One message over LMTP (or SMTP): the replies to each RCPT and then the replies after DATA, as text.

    Written by hand because smtplib.LMTP reads a single reply after DATA, not one per recipient.
    """
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        reader = connection.makefile("rb")

        def reply() -> str:
            lines = []
            while True:
                line = reader.readline().decode("utf-8", "replace").rstrip("\r\n")
                lines.append(line)
                if len(line) < 4 or line[3] != "-":
                    return "\n".join(lines)

        def command(text: str) -> str:
            connection.sendall(text.encode() + b"\r\n")
            return reply()

        reply()  # the greeting
        command(("LHLO" if lmtp else "EHLO") + " client.feedsvc.test")
        command(f"MAIL FROM:<{mail_from}>")
        answers = [command(f"RCPT TO:<{r}>") for r in recipients]
        if command("DATA").startswith("354"):
            body = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in data.split(b"\r\n"))
            connection.sendall(body.rstrip(b"\r\n") + b"\r\n.\r\n")
            answers += [reply() for _ in (recipients if lmtp else [None])]
        command("QUIT")
        return answers


def verp_address(settings: Settings, row: SentRow) -> str:
    """The envelope sender the worker used for `row`."""
    from feedsvc.bounces import verp

    local, _, domain = BOUNCE_ADDRESS.partition("@")
    return f"{local}+{verp.make_tag(settings, row.outbox_id)}@{domain}"


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def dsn(
    to: str, recipient: str, status: str, diagnostic: str, *, message_id: str = "", action: str = "failed"
) -> bytes:
    """An RFC 3464 report to `to` about `recipient`, with the original's headers (its Message-ID) attached."""
    boundary = "dsn-boundary-0001"
    original = f"Message-ID: {message_id}\nFrom: newsletter@example.org\nTo: {recipient}\nSubject: issue\n"
    return _crlf(
        f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-{abs(hash((to, recipient, status))) % 10**12}@mx.example.net>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=utf-8

Your message could not be delivered to {recipient}.

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--{boundary}
Content-Type: text/rfc822-headers

{original}
--{boundary}--
"""
    )


def arf(to: str, recipient: str, message_id: str, feedback_type: str = "abuse") -> bytes:
    """An RFC 5965 feedback report (a reader pressed "spam") about the mail `message_id` to `recipient`."""
    boundary = "arf-boundary-0001"
    return _crlf(
        f"""From: feedback@fbl.example.net
To: {to}
Subject: FW: issue
Message-ID: <arf-{abs(hash((recipient, message_id))) % 10**12}@fbl.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=utf-8

This is an email abuse report.

--{boundary}
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: ExampleFBL/1.0
Version: 1
Original-Rcpt-To: {recipient}

--{boundary}
Content-Type: message/rfc822

Message-ID: {message_id}
From: newsletter@example.org
To: {recipient}
Subject: issue

the issue
--{boundary}--
"""
    )


def auto_reply(to: str, sender: str) -> bytes:
    """A vacation notice (RFC 3834 Auto-Submitted)."""
    return _crlf(
        f"""From: {sender}
To: {to}
Subject: Out of office: issue
Message-ID: <vacation-{abs(hash(sender)) % 10**12}@example.com>
Auto-Submitted: auto-replied
Content-Type: text/plain; charset=utf-8

I am away until Monday.
"""
    )


def letter(to: str) -> bytes:
    """An ordinary letter from a person: no report of any kind."""
    return _crlf(
        f"""From: A Reader <reader@example.net>
To: {to}
Subject: 关于上一期的问题
Message-ID: <letter-1@example.net>
Content-Type: text/plain; charset=utf-8

你好，上一期的第三条能否再详细说说？
"""
    )


def subscriber_state(database: Database, subscriber_id: int) -> dict[str, Any]:
    """Status and bounce score of one subscriber."""
    with database.session(readonly=True) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        assert subscriber is not None
        return {"status": subscriber.status, "score": float(subscriber.bounce_score or 0)}
