"""The bounce mailbox over IMAP: every message is offered to a handler; what it handled is moved to a folder, what it
did not recognise stays where it was, untouched. No Flask, no database (the handler does the recording).

- `FEEDSVC_BOUNCE_IMAP_URL`: ``imaps://user:pass@host[:port]/INBOX`` (TLS from the first byte, port 993) or
  ``imap://user:pass@host[:port]/INBOX`` (STARTTLS, required: a server that does not offer it is refused, port 143).
  User and password are percent-decoded, so ``@``, ``:`` and ``/`` in them are written ``%40``, ``%3A``, ``%2F``.
- The server's certificate is checked against the system's trust store, or against the CA file in
  `FEEDSVC_BOUNCE_IMAP_CA` (a PEM file) when that is set; host names are always checked.
- Messages are read by UID with ``BODY.PEEK[]``, so no message is marked \\Seen by being read; a message larger than
  FEEDSVC_BOUNCE_MAX_BYTES is not downloaded at all (and left).
- A handled message is moved to `FEEDSVC_BOUNCE_IMAP_FOLDER` (default ``feedsvc-processed``, created when missing):
  with MOVE (RFC 6851) if the server has it, else COPY, \\Deleted and ``UID EXPUNGE`` of that UID only (UIDPLUS). A
  server with neither keeps the copy flagged \\Deleted and unexpunged: a plain EXPUNGE would also remove what the
  mailbox's owner had deleted, and the fetcher skips deleted messages.
- Messages the handler did not recognise are remembered by UID (per UIDVALIDITY) in a small state file, so a large
  foreign mailbox is not downloaded again every round. A handler that raises (the database is away) leaves its
  message for the next round.
- The password never reaches a log line or an error message: URLs are shown as ``imaps://user@host:port/INBOX``.
"""

from __future__ import annotations

import contextlib
import imaplib
import json
import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["FetchResult", "Mailbox", "MailboxError", "fetch_once", "run_fetcher"]

log = logging.getLogger(__name__)

DEFAULT_FOLDER = "feedsvc-processed"
DEFAULT_INTERVAL = 60.0
TIMEOUT = 30.0
Handler = Callable[[bytes], bool]  # raw message -> handled (recognised as a report); raising leaves the message
_SIZE = re.compile(rb"UID (\d+) RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+) UID (\d+)")


class MailboxError(Exception):
    """The mailbox could not be reached or used; the message names the URL without its password."""


@dataclass(frozen=True)
class Mailbox:
    """Where the bounce mailbox is, from FEEDSVC_BOUNCE_IMAP_URL and friends."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    implicit_tls: bool = True
    ca_file: str = ""
    processed: str = DEFAULT_FOLDER

    @classmethod
    def from_url(cls, url: str, *, ca_file: str = "", processed: str = DEFAULT_FOLDER) -> Mailbox:
        """Parse ``imaps://user:pass@host[:port]/FOLDER`` or ``imap://…`` (STARTTLS); ValueError says what is wrong."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("imap", "imaps"):
            raise ValueError("FEEDSVC_BOUNCE_IMAP_URL must start with imaps:// (TLS) or imap:// (STARTTLS)")
        if not parts.hostname or not parts.username or parts.password is None:
            raise ValueError(
                "FEEDSVC_BOUNCE_IMAP_URL needs a user, a password and a host: imaps://user:pass@host/INBOX"
            )
        try:
            port = parts.port or (993 if parts.scheme == "imaps" else 143)
        except ValueError:
            raise ValueError("FEEDSVC_BOUNCE_IMAP_URL has a port that is not a number") from None
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        if not processed.strip() or processed == folder:
            raise ValueError("the folder for processed messages must be named, and differ from the one read")
        return cls(
            host=parts.hostname,
            port=port,
            user=unquote(parts.username),
            password=unquote(parts.password),
            folder=folder,
            implicit_tls=parts.scheme == "imaps",
            ca_file=ca_file,
            processed=processed,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Mailbox:
        """FEEDSVC_BOUNCE_IMAP_URL, FEEDSVC_BOUNCE_IMAP_CA and FEEDSVC_BOUNCE_IMAP_FOLDER."""
        url = env.get("FEEDSVC_BOUNCE_IMAP_URL", "")
        if not url:
            raise ValueError("FEEDSVC_BOUNCE_IMAP_URL is not set (imaps://user:pass@host/INBOX)")
        ca_file = env.get("FEEDSVC_BOUNCE_IMAP_CA", "")
        if ca_file and not Path(ca_file).is_file():
            raise ValueError(f"FEEDSVC_BOUNCE_IMAP_CA={ca_file}: no such file")
        return cls.from_url(url, ca_file=ca_file, processed=env.get("FEEDSVC_BOUNCE_IMAP_FOLDER", DEFAULT_FOLDER))

    @property
    def shown(self) -> str:
        """The mailbox as logs show it: no password."""
        return f"{'imaps' if self.implicit_tls else 'imap'}://{self.user}@{self.host}:{self.port}/{self.folder}"

    def tls_context(self) -> ssl.SSLContext:
        """Certificates and host names checked, against FEEDSVC_BOUNCE_IMAP_CA or the system's store."""
        return ssl.create_default_context(cafile=self.ca_file or None)


@dataclass
class FetchResult:
    """What one round did: messages handled (and moved), left (not recognised), failed (to be tried again)."""

    handled: int = 0
    left: int = 0
    failed: int = 0
    skipped: int = 0  # known not to be reports from an earlier round, or too large


# --------------------------------------------------------------------------------------------- one round


def fetch_once(mailbox: Mailbox, handle: Handler, *, max_bytes: int, state_file: Path | None = None) -> FetchResult:
    """Offer every message of the mailbox to `handle` once; MailboxError when the server cannot be used."""
    try:
        with _connected(mailbox) as imap:
            return _round(imap, mailbox, handle, max_bytes, state_file)
    except (imaplib.IMAP4.error, OSError, ssl.SSLError, EOFError) as exc:
        raise MailboxError(f"{mailbox.shown}: {_without_password(str(exc), mailbox)}") from None


@contextlib.contextmanager
def _connected(mailbox: Mailbox) -> Iterator[imaplib.IMAP4]:
    context = mailbox.tls_context()
    if mailbox.implicit_tls:
        imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(mailbox.host, mailbox.port, ssl_context=context, timeout=TIMEOUT)
    else:
        imap = imaplib.IMAP4(mailbox.host, mailbox.port, timeout=TIMEOUT)
        try:
            if "STARTTLS" not in imap.capabilities:
                raise MailboxError(f"{mailbox.shown}: the server does not offer STARTTLS; refusing to log in in clear")
            imap.starttls(context)
        except BaseException:
            imap.shutdown()
            raise
    try:
        imap.login(mailbox.user, mailbox.password)
        yield imap
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError, EOFError):
            imap.logout()


def _round(
    imap: imaplib.IMAP4, mailbox: Mailbox, handle: Handler, max_bytes: int, state_file: Path | None
) -> FetchResult:
    capabilities = _capabilities(imap)
    typ, data = imap.select(_quoted(mailbox.folder))
    _ok(typ, data, f"SELECT {mailbox.folder}")
    validity = _uidvalidity(imap)
    known = _load_left(state_file, validity)
    typ, data = imap.uid("SEARCH", "UNDELETED")
    _ok(typ, data, "UID SEARCH")
    uids = [int(u) for u in (data[0] or b"").split()]
    result = FetchResult()
    folder_ready = False
    for uid in uids:
        if uid in known:
            result.skipped += 1
            continue
        size = _size(imap, uid)
        if size is None:
            continue  # gone since the search (another client moved it)
        if size > max_bytes:
            log.warning("%s: message UID %d is %d bytes, over FEEDSVC_BOUNCE_MAX_BYTES: left", mailbox.shown, uid, size)
            known.add(uid)
            result.skipped += 1
            continue
        raw = _body(imap, uid)
        if raw is None:
            continue
        try:
            handled = handle(raw)
        except Exception:
            log.exception("%s: message UID %d could not be taken in; it stays for the next round", mailbox.shown, uid)
            result.failed += 1
            continue
        if not handled:
            known.add(uid)
            result.left += 1
            continue
        if not folder_ready:
            _ensure_folder(imap, mailbox.processed)
            folder_ready = True
        _move(imap, uid, mailbox.processed, capabilities)
        result.handled += 1
    _save_left(state_file, validity, known & set(uids))
    return result


def _capabilities(imap: imaplib.IMAP4) -> set[str]:
    """The capabilities after login (servers often announce more then than before)."""
    typ, data = imap.capability()
    _ok(typ, data, "CAPABILITY")
    return {word.upper() for word in (data[0] or b"").decode("ascii", "replace").split()}


def _uidvalidity(imap: imaplib.IMAP4) -> int:
    """The folder's UIDVALIDITY from the SELECT answer (0 if the server gave none: nothing is remembered then)."""
    values = imap.untagged_responses.get("UIDVALIDITY") or []
    return int(values[-1]) if values and values[-1].isdigit() else 0


def _size(imap: imaplib.IMAP4, uid: int) -> int | None:
    typ, data = imap.uid("FETCH", str(uid), "(RFC822.SIZE)")
    _ok(typ, data, "UID FETCH RFC822.SIZE")
    for item in data:
        line = item[0] if isinstance(item, tuple) else item
        match = _SIZE.search(line or b"")
        if match:
            found_uid, size = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
            if int(found_uid) == uid:
                return int(size)
    return None


def _body(imap: imaplib.IMAP4, uid: int) -> bytes | None:
    """The whole message, read without setting \\Seen."""
    typ, data = imap.uid("FETCH", str(uid), "(BODY.PEEK[])")
    _ok(typ, data, "UID FETCH BODY.PEEK[]")
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and b"BODY[]" in item[0]:
            return bytes(item[1])
    return None


def _ensure_folder(imap: imaplib.IMAP4, folder: str) -> None:
    typ, data = imap.list('""', _quoted(folder))
    if typ == "OK" and any(item for item in data if item):
        return
    typ, data = imap.create(_quoted(folder))
    if typ != "OK" and b"ALREADYEXISTS" not in b" ".join(d for d in data if isinstance(d, bytes)).upper():
        _ok(typ, data, f"CREATE {folder}")


def _move(imap: imaplib.IMAP4, uid: int, folder: str, capabilities: set[str]) -> None:
    """Move one message by UID: MOVE, else COPY + \\Deleted + UID EXPUNGE of that UID alone."""
    if "MOVE" in capabilities:
        typ, data = imap.uid("MOVE", str(uid), _quoted(folder))
        _ok(typ, data, "UID MOVE")
        return
    typ, data = imap.uid("COPY", str(uid), _quoted(folder))
    _ok(typ, data, "UID COPY")
    typ, data = imap.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
    _ok(typ, data, "UID STORE")
    if "UIDPLUS" in capabilities:
        typ, data = imap.uid("EXPUNGE", str(uid))
        _ok(typ, data, "UID EXPUNGE")


def _ok(typ: str, data: list, what: str) -> None:
    if typ != "OK":
        words = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise imaplib.IMAP4.error(f"{what}: {typ} {words}".strip())


def _quoted(name: str) -> str:
    """A mailbox name as an IMAP quoted string (imaplib sends arguments as they are)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _without_password(text: str, mailbox: Mailbox) -> str:
    return text.replace(mailbox.password, "***") if mailbox.password else text


# ---------------------------------------------------------------------- what earlier rounds did not recognise


def _load_left(state_file: Path | None, validity: int) -> set[int]:
    if state_file is None or not validity:
        return set()
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(state, dict) or state.get("uidvalidity") != validity:
        return set()  # the mailbox was recreated: its UIDs mean other messages now
    return {int(uid) for uid in state.get("left", []) if isinstance(uid, int)}


def _save_left(state_file: Path | None, validity: int, left: set[int]) -> None:
    if state_file is None or not validity:
        return
    state_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = state_file.with_suffix(".tmp")
    temporary.write_text(json.dumps({"uidvalidity": validity, "left": sorted(left)}), encoding="utf-8")
    os.replace(temporary, state_file)


def state_file_for(var_dir: Path, mailbox: Mailbox) -> Path:
    """Where the UIDs left in `mailbox` are remembered: one file per server, user and folder."""
    import hashlib

    key = hashlib.sha256(f"{mailbox.host}:{mailbox.port}:{mailbox.user}:{mailbox.folder}".encode()).hexdigest()[:16]
    return var_dir / "bounces" / f"imap-{key}.json"


# ------------------------------------------------------------------------------------------------- the loop


def run_fetcher(
    mailbox: Mailbox,
    handle: Handler,
    *,
    max_bytes: int,
    state_file: Path | None,
    interval: float = DEFAULT_INTERVAL,
    stop: threading.Event | None = None,
    on_round: Callable[[FetchResult], None] | None = None,
) -> None:
    """A round every `interval` seconds until `stop` is set; a failing server is logged and tried again, waiting
    longer each time (up to ten intervals), never ending the loop."""
    stop = stop or threading.Event()
    failures = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            result = fetch_once(mailbox, handle, max_bytes=max_bytes, state_file=state_file)
        except Exception as exc:  # a server away, a bad login, a server that says odd things: wait and try again
            failures += 1
            wait = min(interval * 10, interval * 2 ** min(failures - 1, 4))
            if isinstance(exc, MailboxError):
                log.error("bounce mailbox: %s; trying again in %.0f s", exc, wait)
            else:
                log.exception("bounce mailbox %s: unexpected failure; trying again in %.0f s", mailbox.shown, wait)
            stop.wait(wait)
            continue
        failures = 0
        if result.handled or result.failed:
            log.info(
                "bounce mailbox %s: %d handled, %d left, %d failed",
                mailbox.shown,
                result.handled,
                result.left,
                result.failed,
            )
        if on_round is not None:
            on_round(result)
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
