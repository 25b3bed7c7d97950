"""Serving a built site from disk: `SiteReader` reads files of the current generation with their validators.

Pure (no Flask): the web app asks for a relative path and gets a `SiteFile` (bytes, gzip bytes, ETags,
Last-Modified) or None, for a file that is not there or a path no file could have.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import errno
import gzip
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedsvc.site.writer import SITE_META

CONTENT_TYPES = {
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
}
# What opening a path that no built file has can raise: no such file, a file where a folder would be, a
# folder, and a name longer than the file system allows (GET /feeds/<300 characters>.atom).
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG})


@dataclass(frozen=True)
class SiteFile:
    """A built file ready to serve: bytes, gzip bytes, strong ETags and Last-Modified."""

    path: str
    data: bytes
    gzipped: bytes
    etag: str  # quoted, as in the ETag header
    gzip_etag: str
    last_modified: dt.datetime
    last_modified_http: str  # as in the Last-Modified header
    content_type: str


class SiteReader:
    """Reads files of the current generation, cached until the file behind the path changes.

    One `stat` per request tells whether the cached copy is current (device, inode, mtime, size), so a
    rebuilt site is served at once, without a restart. ETags are content hashes; gzip is compressed once.
    """

    def __init__(self, site_dir: Path, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.site_dir = str(site_dir)
        self.max_bytes = max_bytes
        self._cache: dict[str, tuple[tuple[int, int, int, int], SiteFile]] = {}
        self._cached_bytes = 0
        self._lock = threading.Lock()  # for misses; a hit is one dict lookup
        self._meta: tuple[tuple[int, int, int, int], dict[str, Any]] | None = None

    def get(self, path: str) -> SiteFile | None:
        """The file at `path` (relative, as written by the build), or None."""
        full = os.path.join(self.site_dir, path)
        try:
            key = _stat_key(os.stat(full))
        except OSError as exc:
            return _none_if_absent(exc)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            with open(full, "rb") as handle:
                key = _stat_key(os.fstat(handle.fileno()))
                data = handle.read()
        except OSError as exc:
            return _none_if_absent(exc)
        loaded = _site_file(path, data, key[2])
        self._remember(path, key, loaded)
        return loaded

    @property
    def cached_bytes(self) -> int:
        """Bytes held in the cache (plain and gzip)."""
        return self._cached_bytes

    def _remember(self, path: str, key: tuple[int, int, int, int], loaded: SiteFile) -> None:
        """Cache a loaded file, dropping the oldest entries beyond the byte budget."""
        size = len(loaded.data) + len(loaded.gzipped)
        with self._lock:
            previous = self._cache.pop(path, None)
            if previous is not None:
                self._cached_bytes -= len(previous[1].data) + len(previous[1].gzipped)
            while self._cache and self._cached_bytes + size > self.max_bytes:
                _, dropped = self._cache.pop(next(iter(self._cache)))  # the oldest entry
                self._cached_bytes -= len(dropped.data) + len(dropped.gzipped)
            self._cache[path] = (key, loaded)
            self._cached_bytes += size

    def metadata(self) -> dict[str, Any]:
        """site.json of the current generation; empty lists before the first build."""
        full = os.path.join(self.site_dir, SITE_META)
        try:
            key = _stat_key(os.stat(full))
        except (FileNotFoundError, NotADirectoryError):
            return {"issues": [], "feeds": []}
        if self._meta is None or self._meta[0] != key:
            with open(full, "rb") as handle:
                self._meta = (key, json.loads(handle.read()))
        return self._meta[1]


def _none_if_absent(exc: OSError) -> None:
    """None for a path that names no built file; any other failure (permissions, I/O) is raised."""
    if exc.errno not in _ABSENT:
        raise exc
    return None


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _site_file(path: str, data: bytes, mtime_ns: int) -> SiteFile:
    digest = hashlib.sha256(data).hexdigest()[:32]
    modified = dt.datetime.fromtimestamp(mtime_ns // 1_000_000_000, tz=dt.UTC)
    return SiteFile(
        path=path,
        data=data,
        gzipped=gzip.compress(data, compresslevel=6, mtime=0),
        etag=f'"{digest}"',
        gzip_etag=f'"{digest}-gzip"',
        last_modified=modified,
        last_modified_http=email.utils.format_datetime(modified, usegmt=True),
        content_type=CONTENT_TYPES.get(os.path.splitext(path)[1], "application/octet-stream"),
    )
