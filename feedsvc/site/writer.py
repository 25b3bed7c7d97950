"""Writing a site atomically: a new generation folder beside the old one, one symlink swap, hard links for
unchanged files, and one build lock per output folder. Knows nothing of issues or templates.

Layout on disk, for an output folder ``var/site``::

    var/site -> .site.builds/3f6c0a9d1e2b4c57     a symlink, swapped atomically by each build
    var/.site.builds/3f6c0a9d1e2b4c57/            one complete build ("generation"), named by its content
        feeds/<slug>.atom  feeds/<slug>.json  feeds/all.*  feeds/issues.*
        issues/index.html  issues/<n>.html    (and index.en.html, <n>.en.html: the English page chrome)
        site.json                              what the landing and 404 pages need to know

A generation is written next to the current one, then the symlink is replaced with ``rename(2)``: readers see
the old site or the new one, never a mix. A file whose bytes did not change is hard-linked from the previous
generation, so it keeps its inode and modification time (its HTTP Last-Modified). The previous generation is
kept (requests in flight may read it), which is also what `SiteWriter.restore` puts back.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SITE_META = "site.json"
_SAFE_RELATIVE = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


class SiteError(Exception):
    """The site cannot be rendered or written where asked; the message says why."""


@dataclass(frozen=True)
class BuildResult:
    """What a build did: where the site is, which generation, and which files changed."""

    out_dir: Path
    generation: Path
    files: int
    changed: tuple[str, ...]
    issues: int


class SiteWriter:
    """An output folder whose build lock is held: writes generations, and can undo the last write."""

    def __init__(self, out_dir: Path, store: Path) -> None:
        self.out_dir, self.store = out_dir, store
        self._before: tuple[Path | None, Path] | None = None  # (the generation before the last write, the new one)

    def write(self, files: Mapping[str, bytes]) -> BuildResult:
        """Write `files` as a new generation and point the output folder at it in one atomic step."""
        for path in files:
            if not _SAFE_RELATIVE.fullmatch(path) or ".." in path.split("/"):
                raise SiteError(f"refusing to write {path!r}: not a plain relative path")
        _adopt_existing(self.out_dir, self.store)
        current = _current_generation(self.out_dir)
        final = self.store / generation_name(files)
        if current == final:
            return BuildResult(self.out_dir, final, len(files), (), 0)
        try:
            changed = _write_generation(files, self.store, final, current)
            _point(self.out_dir, final)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise SiteError(_no_space(self.out_dir, self.store, files)) from exc
        self._before = (current, final)
        _collect(self.store, keep={final, current})
        return BuildResult(self.out_dir, final, len(files), changed, 0)

    def restore(self) -> None:
        """Point the output folder back at the generation it had before the last `write` (no site: no link)."""
        if self._before is None:
            return
        previous, _ = self._before
        if previous is None:
            self.out_dir.unlink(missing_ok=True)
        else:
            _point(self.out_dir, previous)
        self._before = None


@contextlib.contextmanager
def open_site(out_dir: Path) -> Iterator[SiteWriter]:
    """The writer of `out_dir`, holding its build lock for the block: one build at a time per output folder."""
    out_dir = Path(os.path.abspath(out_dir))
    store = store_dir(out_dir)
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield SiteWriter(out_dir, store)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def generation_name(files: Mapping[str, bytes]) -> str:
    """A generation's folder name: a digest of every path and its bytes."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode("utf-8") + b"\0" + hashlib.sha256(files[path]).digest())
    return digest.hexdigest()[:16]


def store_dir(out_dir: Path) -> Path:
    """Where the generations of `out_dir` live: a hidden folder beside it."""
    return out_dir.parent / f".{out_dir.name}.builds"


def write_site(files: Mapping[str, bytes], out_dir: Path) -> BuildResult:
    """Write `files` as a new generation of `out_dir` and swap it in (taking the build lock)."""
    with open_site(out_dir) as site:
        return site.write(files)


def _no_space(out_dir: Path, store: Path, files: Mapping[str, bytes]) -> str:
    """What a build that ran out of disk says: what could not be written, where, and that nothing changed."""
    free = shutil.disk_usage(store).free
    size = sum(len(data) for data in files.values())
    return (
        f"no space left on the device of {store}: the new site ({len(files)} files, {size:,} bytes) could not be "
        f"written ({free:,} bytes free there); {out_dir} is unchanged. "
        "Free some space and build again"
    )


def _adopt_existing(out_dir: Path, store: Path) -> None:
    """Make room for the symlink: an empty folder goes, an earlier plain feedsvc site moves into the store."""
    if out_dir.is_symlink() or not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise SiteError(f"{out_dir} exists and is not a folder")
    if not any(out_dir.iterdir()):
        out_dir.rmdir()
    elif (out_dir / SITE_META).is_file():
        out_dir.rename(tempfile.mkdtemp(prefix="old-", dir=store))
    else:
        raise SiteError(f"{out_dir} is a folder feedsvc did not build; remove it or choose another --out")


def _current_generation(out_dir: Path) -> Path | None:
    if not out_dir.is_symlink():
        return None
    target = Path(os.path.realpath(out_dir))
    return target if target.is_dir() else None


def _write_generation(files: Mapping[str, bytes], store: Path, final: Path, current: Path | None) -> tuple[str, ...]:
    """Write the files into a temporary folder in the store, then rename it to `final`."""
    changed: list[str] = []
    temporary = Path(tempfile.mkdtemp(prefix="tmp-", dir=store))
    try:
        temporary.chmod(0o755)
        folders = {temporary}
        for path in sorted(files):
            data, target = files[path], temporary / path
            target.parent.mkdir(parents=True, exist_ok=True)
            folders.add(target.parent)
            previous = current / path if current else None
            if previous is not None and _same_bytes(previous, data):
                _link_or_copy(previous, target)
                continue
            changed.append(path)
            with open(target, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        for folder in sorted(folders, reverse=True):
            _fsync_dir(folder)
        if final.exists():  # the same content was built before (a rollback): reuse that generation
            shutil.rmtree(temporary)
        else:
            temporary.rename(final)
            _fsync_dir(store)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return tuple(changed)


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _point(out_dir: Path, generation: Path) -> None:
    """Replace the `out_dir` symlink with one to `generation`, atomically (rename over the old link)."""
    link = out_dir.parent / f".{out_dir.name}.link-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    os.symlink(os.path.relpath(generation, out_dir.parent), link)
    os.replace(link, out_dir)
    _fsync_dir(out_dir.parent)


def _collect(store: Path, keep: Iterable[Path | None]) -> None:
    """Remove all but the new and the previous generation (requests in flight may still read the previous
    one), and leftovers of interrupted builds. The lock is held."""
    kept = {p for p in keep if p is not None}
    for entry in store.iterdir():
        if entry.is_dir() and entry not in kept:
            shutil.rmtree(entry, ignore_errors=True)
