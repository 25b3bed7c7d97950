"""Helpers for the DKIM tests: verify every signature of a message, read a signature's tags, write a
feedsvc.toml with DKIM settings and the environment of a command run against it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import dkim as dkimpy

DnsFunc = Callable[..., bytes | None]
ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "feedsvc.example.org"


def signatures(data: bytes) -> list[dict[str, str]]:
    """The tags of each DKIM-Signature header, top first."""
    message = dkimpy.DKIM(data)
    found = []
    for name, value in message.headers:
        if name.lower() == b"dkim-signature":
            text = re.sub(rb"\s+", b"", value).decode("ascii")
            found.append(dict(part.split("=", 1) for part in text.split(";") if part))
    return found


def verify_all(data: bytes, dnsfunc: DnsFunc) -> list[tuple[str, bool]]:
    """(algorithm, verified) for each DKIM-Signature, with dkimpy's verifier and `dnsfunc` for the keys."""
    message = dkimpy.DKIM(data)
    return [(sig["a"], _verifies(message, i, dnsfunc)) for i, sig in enumerate(signatures(data))]


def _verifies(message: dkimpy.DKIM, index: int, dnsfunc: DnsFunc) -> bool:
    try:
        return bool(message.verify(idx=index, dnsfunc=dnsfunc))
    except dkimpy.ValidationError:  # a body hash mismatch is raised, not returned
        return False


def replace_header(data: bytes, name: bytes, value: bytes) -> bytes:
    """`data` with the first `name:` header's value (folded lines included) replaced by `value`."""
    pattern = re.compile(rb"^(" + re.escape(name) + rb":)[^\r\n]*(\r\n[ \t][^\r\n]*)*", re.IGNORECASE | re.MULTILINE)
    changed, count = pattern.subn(lambda m: m.group(1) + b" " + value, data, count=1)
    assert count == 1, f"no {name!r} header"
    return changed


def write_config(folder: Path, **mail: str) -> Path:
    """A copy of the real feedsvc.toml in `folder` with `mail` added to its [mail] table."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "feedsvc.toml").read_text(encoding="utf-8")
    for name, value in mail.items():
        line = f'{name} = "{value}"'
        text, found = re.subn(rf"^{name} = .*$", line, text, count=1, flags=re.MULTILINE)
        if not found:
            text = text.replace("[mail]\n", f"[mail]\n{line}\n", 1)
    path = folder / "feedsvc.toml"
    path.write_text(text, encoding="utf-8")
    shutil.copytree(ROOT / "templates", folder / "templates", dirs_exist_ok=True)
    return path


def environment(config: Path, tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a feedsvc command run against `config`."""
    return {
        "FEEDSVC_CONFIG": str(config),
        "FEEDSVC_VAR_DIR": str(tmp_path / "var"),
        "FEEDSVC_SECRET_KEY": "test-secret-key-0123456789",
        "DATABASE_URL": database_url,
        "FEEDSVC_BASE_URL": "https://news.example.org",
        **extra,
    }
