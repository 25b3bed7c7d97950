"""Fixtures for feeds, the site build and the public web app: settings on tmp folders, issue writers."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from builders import make_app, make_settings
from flask import Flask
from support import ROOT, SEED

from feedsvc.config import Publication, Settings
from feedsvc.site.build import build

GOLDEN = Path(__file__).resolve().parent / "golden"
SEED_COUNTS = {"industry": 12, "content": 5, "technology": 4, "capital": 2, "people": 3, "research": 1}

FEEDSVC = Path(sys.executable).with_name("feedsvc")
IssueWriter = Callable[..., Path]


@pytest.fixture
def golden_publication(publication: Publication) -> Publication:
    """The real publication with the deployment-dependent parts pinned, so golden files do not drift."""
    return replace(publication, base_url="https://news.example.org", id_authority="feedsvc.example.org", websub_hub="")


@pytest.fixture
def site_settings(tmp_path: Path) -> Settings:
    """Settings on tmp folders and no database, the seed issue in tmp_path/issues (not built yet).

    Not the root `settings` (which is on the test databases, with the repository's issues/).
    """
    result = make_settings(tmp_path, issues_dir=tmp_path / "issues")
    result.issues_dir.mkdir(parents=True)
    shutil.copy(SEED, result.issues_dir / SEED.name)
    return result


def build_site(settings: Settings) -> None:
    build(settings.issues_dir, settings.site_dir, settings.publication, settings.templates_dir)


@pytest.fixture
def built(site_settings: Settings) -> Settings:
    """`site_settings` after a build of the seed."""
    build_site(site_settings)
    return site_settings


@pytest.fixture
def app(built: Settings) -> Iterator[Flask]:
    with make_app(built) as app:
        yield app


@pytest.fixture
def client(app: Flask):  # type: ignore[no-untyped-def]
    return app.test_client()


def issue_text(
    number: int,
    date: dt.date,
    sections: Mapping[str, Sequence[tuple[str, str]]],
    summary: Sequence[str] = ("本期要点",),
) -> str:
    """The Markdown of an issue in the seed's shape: header, summary, sections of (title, body) items, colophon."""
    header = ["# 行业动态周报", "中国网络视听协会", f"第 {number} 期", f"{date.year} 年 {date.month} 月 {date.day} 日"]
    lines = [part for line in header for part in (line, "")]
    lines += ["## 摘要：", ""] + [f"- ◆{line}" for line in summary] + [""]
    for name, items in sections.items():
        lines += [f"## {name}", ""]
        for title, body in items:
            lines += [f"### {title}", "", body, ""]
    lines += ["**编辑部：**中国网络视听协会", ""]
    return "\n".join(lines)


@pytest.fixture
def write_issue(site_settings: Settings) -> IssueWriter:
    """Write an issue file into the site settings' issues folder; returns its path."""

    def write(number: int, date: dt.date, sections: Mapping[str, Sequence[tuple[str, str]]], **kw: object) -> Path:
        path = site_settings.issues_dir / f"{date.isoformat()}-{number}.md"
        path.write_text(issue_text(number, date, sections, **kw), encoding="utf-8")  # type: ignore[arg-type]
        return path

    return write


def site_files(site_dir: Path) -> dict[str, bytes]:
    """Every file of a built site, relative path → bytes."""
    root = site_dir.resolve()
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def read_site() -> Callable[[Path], dict[str, bytes]]:
    """`site_files` as a fixture, for test modules (they cannot import this conftest)."""
    return site_files


@pytest.fixture
def rebuild() -> Callable[[Settings], None]:
    """`build_site` as a fixture."""
    return build_site


@pytest.fixture
def seed_counts() -> dict[str, int]:
    """Items per section slug in the seed issue."""
    return dict(SEED_COUNTS)


@dataclass
class LiveServer:
    """A running `feedsvc serve`: its address, its access log, the site it serves."""

    url: str
    log: Path
    site_dir: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`feedsvc build` (issues/ of the repository, defaults otherwise) then `feedsvc serve` on a free port."""
    tmp = tmp_path_factory.mktemp("live")
    port = _free_port()
    env = {
        **os.environ,
        "FEEDSVC_CONFIG": str(ROOT / "feedsvc.toml"),
        "FEEDSVC_VAR_DIR": str(tmp / "var"),
        "FEEDSVC_SITE_DIR": str(tmp / "var" / "site"),
        "FEEDSVC_SECRET_KEY": "test-secret",
        "FEEDSVC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("FEEDSVC_ISSUES_DIR", None)
    built = subprocess.run([FEEDSVC, "build"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    log = tmp / "server.log"
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            [FEEDSVC, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=sink, stderr=sink
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert server.poll() is None, log.read_text("utf-8", "replace")
                assert time.monotonic() < deadline, "feedsvc serve did not answer within 30 s"
                time.sleep(0.1)
        yield LiveServer(url, log, tmp / "var" / "site")
    finally:
        server.terminate()
        server.wait(timeout=10)
