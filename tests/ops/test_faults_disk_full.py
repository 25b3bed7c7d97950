"""The disk fills while the site is built: the site folder is on a small tmpfs (mounted by the test, as root),
filled to the last byte before `feedsvc build` runs. The build is refused with a message that names the
problem and the folder, the previous site stays in place byte for byte (and is what the app serves), and
once space is freed the next build goes through."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import cli_env, make_app, make_settings
from ops_support import FEEDSVC
from support import SEED, require

from feedsvc.config import Settings
from feedsvc.site.build import build

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs at tmp_path/disk (root only: skips locally without it, fails in CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = os.geteuid() == 0 and shutil.which("mount") is not None
    if mounted:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)]).returncode == 0
    require(mounted, "mounting a tmpfs (run as root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _build_here(settings: Settings) -> None:
    build(settings.issues_dir, settings.site_dir, settings.publication, settings.templates_dir)


def _build(settings: Settings) -> subprocess.CompletedProcess[str]:
    """`feedsvc build` as the operator runs it."""
    env = {**os.environ, **cli_env(settings)}
    return subprocess.run([str(FEEDSVC), "build"], env=env, capture_output=True, text=True, timeout=120)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fill(folder: Path) -> None:
    """Write into `folder` until the file system has no byte left."""
    chunk = b"\0" * 65536
    with open(folder / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError:
            pass
        try:
            while True:
                handle.write(b"\0")
        except OSError:
            pass


def test_a_full_disk_refuses_the_build_by_name_and_the_old_site_is_served_unchanged(
    tmp_path: Path, small_disk: Path
) -> None:
    settings = make_settings(tmp_path, env={"FEEDSVC_SITE_DIR": str(small_disk / "site")})
    _build_here(settings)
    generation = os.readlink(settings.site_dir)
    before = _files(settings.site_dir)
    text = SEED.read_text(encoding="utf-8").replace("第 398 期", "第 399 期").replace("1 月 22 日", "1 月 29 日")
    (settings.issues_dir / "2024-01-29-399.md").write_text(text, encoding="utf-8")
    _fill(small_disk)

    refused = _build(settings)
    store = small_disk / ".site.builds"
    assert refused.returncode != 0
    assert "no space left on the device of" in refused.stderr and str(store) in refused.stderr, refused.stderr
    assert f"{settings.site_dir} is unchanged" in refused.stderr and "Traceback" not in refused.stderr
    assert os.readlink(settings.site_dir) == generation  # the same generation, byte for byte
    assert _files(settings.site_dir) == before
    assert not [p.name for p in store.iterdir() if p.name.startswith("tmp-")]  # nothing half-written left
    with make_app(settings) as app:
        client = app.test_client()
        archive = client.get("/issues/")
        feed = client.get("/feeds/all.atom")
        assert client.get("/issues/399").status_code == 404
    assert archive.status_code == 200 and archive.data == before["issues/index.html"]
    assert feed.status_code == 200 and feed.data == before["feeds/all.atom"]

    (small_disk / "filler").unlink()  # space freed: the next build goes through
    _build_here(settings)
    assert (settings.site_dir / "issues" / "399.html").is_file()
