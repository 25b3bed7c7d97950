"""The static site: feeds and archive pages rendered from issues, written atomically, read back for serving. Pure.

No Flask and no database here; pages are rendered with plain Jinja from the publisher's templates folder.

Layout on disk, for an output folder ``var/site``::

    var/site -> .site.builds/3f6c0a9d1e2b4c57     a symlink, swapped atomically by each build
    var/.site.builds/3f6c0a9d1e2b4c57/            one complete build ("generation"), named by its content
        feeds/<slug>.atom  feeds/<slug>.json  feeds/all.*  feeds/issues.*
        issues/index.html  issues/<n>.html    (and index.en.html, <n>.en.html: the English page chrome)
        site.json                              what the landing and 404 pages need to know

A build renders everything in memory first (a parse or template error stops it before the disk is touched),
writes a new generation next to the old one, then replaces the symlink with ``rename(2)``: readers see the
old site or the new one, never a mix. A file whose bytes did not change is hard-linked from the previous
generation, so it keeps its inode and modification time (its HTTP Last-Modified). Same input, same bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import fcntl
import gzip
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from feedsvc.config import Publication
from feedsvc.content.reader import Issue, issue_files, load_issues
from feedsvc.i18n import LANGUAGES, translate
from feedsvc.site import feeds, manifest, opml, websub

SITE_META = "site.json"
CONTENT_TYPES = {
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
}
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)  # not strftime("%B"): that follows the machine's locale
_SAFE_RELATIVE = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


class SiteError(Exception):
    """The site cannot be written where asked; the message says why."""


@dataclass(frozen=True)
class BuildResult:
    """What a build did: where the site is, which generation, and which files changed."""

    out_dir: Path
    generation: Path
    files: int
    changed: tuple[str, ...]
    issues: int


# ------------------------------------------------------------------------------------------ rendering


def page_name(base: str, lang: str) -> str:
    """The file of a page in a language: ``issues/398.html`` (zh-CN), ``issues/398.en.html``."""
    return f"{base}.html" if lang == LANGUAGES[0] else f"{base}.{lang.split('-')[0]}.html"


def date_text(value: dt.date, lang: str) -> str:
    """A date as a reader of `lang` writes it: 2024 年 1 月 22 日, or 22 January 2024."""
    if lang == "en":
        return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"
    return f"{value.year} 年 {value.month} 月 {value.day} 日"


def section_label(publication: Publication, slug: str, lang: str) -> str:
    """A section's name for a page in `lang` (the English name if there is one)."""
    section = publication.section_by_slug(slug)
    if section is None:
        return slug
    return section.name_en or section.name if lang == "en" else section.name


def feed_listing(publication: Publication, built: Sequence[feeds.Feed]) -> list[dict[str, Any]]:
    """What a page needs to list every feed: name, title, paths, entry count."""
    counts = {feed.name: len(feed.entries) for feed in built}
    return [
        {
            "name": name,
            "title": feeds.feed_title(publication, name),
            "atom": feeds.feed_path(name, "atom"),
            "json": feeds.feed_path(name, "json"),
            "url": feeds.site_url(publication, feeds.feed_path(name, "atom")),
            "entries": counts[name],
        }
        for name in feeds.feed_names(publication)
    ]


def template_environment(templates_dir: Path) -> jinja2.Environment:
    """Plain Jinja over the publisher's templates folder, HTML escaped by default."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    install_template_helpers(env)
    return env


def install_template_helpers(env: jinja2.Environment) -> None:
    """Filters the page templates use; the web app installs the same ones on Flask's environment."""
    env.filters["date_text"] = date_text


def render_pages(
    issues: Sequence[Issue], publication: Publication, templates_dir: Path, listing: Sequence[Mapping[str, Any]]
) -> dict[str, bytes]:
    """The archive pages, in every UI language: ``issues/index*.html`` and ``issues/<n>*.html``."""
    env = template_environment(templates_dir)
    ordered = _newest_first(issues)
    files: dict[str, bytes] = {}
    for lang in LANGUAGES:
        common = {
            "_": lambda text, _lang=lang, **values: translate(text, _lang, **values),
            "lang": lang,
            "publication": publication,
            "languages": LANGUAGES,
            "feeds": listing,
            "section_label": lambda slug, _lang=lang: section_label(publication, slug, _lang),
            "issue_heading": feeds.issue_heading,
        }
        files[page_name("issues/index", lang)] = _render(env, "web/archive.html", issues=ordered, **common)
        for position, issue in enumerate(ordered):
            previous = ordered[position + 1] if position + 1 < len(ordered) else None
            files[page_name(f"issues/{issue.number}", lang)] = _render(
                env, "web/issue.html", issue=issue, previous=previous, **common
            )
    return files


def _newest_first(issues: Iterable[Issue]) -> list[Issue]:
    return sorted(issues, key=lambda i: (i.date, i.number), reverse=True)


def _render(env: jinja2.Environment, template: str, **context: Any) -> bytes:
    """Render one page; a template mistake becomes a SiteError naming the template (and line, when known)."""
    try:
        return env.get_template(template).render(**context).encode("utf-8")
    except jinja2.TemplateSyntaxError as exc:
        raise SiteError(f"template {exc.filename or exc.name}:{exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise SiteError(f"template {template}: {exc}") from exc


def site_metadata(issues: Sequence[Issue], listing: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """site.json: the issues (newest first) and feeds, for pages the web app renders itself."""
    return {
        "issues": [
            {
                "number": issue.number,
                "date": issue.date.isoformat(),
                "title": issue.title,
                "heading": feeds.issue_heading(issue),
                "summary": list(issue.summary),
                "sections": [{"slug": s.slug, "name": s.name, "items": len(s.items)} for s in issue.sections],
                "path": feeds.issue_path(issue.number),
            }
            for issue in _newest_first(issues)
        ],
        "feeds": list(listing),
    }


def render_site(
    issues: Sequence[Issue],
    publication: Publication,
    templates_dir: Path,
    history: manifest.History | None = None,
    now: dt.datetime | None = None,
) -> dict[str, bytes]:
    """Every file of the site, path → bytes. Deterministic: same issues, templates and history, same bytes
    (`now` only dates corrections: see feedsvc.site.manifest)."""
    built = feeds.build_feeds(issues, publication, history, now)
    files = feeds.feed_files(built, publication)
    files[manifest.MANIFEST] = feeds.manifest_file(built)
    files[opml.OPML_PATH.lstrip("/")] = opml.render(publication)
    listing = feed_listing(publication, built)
    files.update(render_pages(issues, publication, templates_dir, listing))
    meta = json.dumps(site_metadata(issues, listing), ensure_ascii=False, indent=1, sort_keys=True)
    files[SITE_META] = (meta + "\n").encode("utf-8")
    return files


# -------------------------------------------------------------------------------------------- writing


def build(
    issues_dir: Path, out_dir: Path, publication: Publication, templates_dir: Path, now: dt.datetime | None = None
) -> BuildResult:
    """Parse every issue in `issues_dir`, render the site and swap it in at `out_dir`; then queue WebSub pings
    for the feeds that changed (in the background: feedsvc.site.websub).

    A `ParseError` (or a template error) is raised before the site changes. The build lock is held from
    reading issues/ to the swap, so two builds at once cannot put an older reading of issues/ back.
    """
    if not Path(issues_dir).is_dir():
        raise SiteError(f"{issues_dir}: no such folder of issues")
    out_dir, store = _prepare(out_dir)
    with _locked(store / ".lock"):
        issues = load_issues(issue_files(issues_dir), publication)
        history = manifest.load(_read_current(out_dir, manifest.MANIFEST))
        files = render_site(issues, publication, templates_dir, history, now)
        result = _write_locked(files, out_dir, store)
    websub.announce(out_dir, result.changed, publication)
    return BuildResult(result.out_dir, result.generation, result.files, result.changed, len(issues))


def _read_current(out_dir: Path, path: str) -> bytes | None:
    """A file of the current generation, or None."""
    try:
        return (out_dir / path).read_bytes()
    except OSError:
        return None


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
    """Write `files` as a new generation and point `out_dir` at it in one atomic step."""
    out_dir, store = _prepare(out_dir)
    with _locked(store / ".lock"):
        return _write_locked(files, out_dir, store)


def _prepare(out_dir: Path) -> tuple[Path, Path]:
    out_dir = Path(os.path.abspath(out_dir))
    store = store_dir(out_dir)
    store.mkdir(parents=True, exist_ok=True)
    return out_dir, store


def _write_locked(files: Mapping[str, bytes], out_dir: Path, store: Path) -> BuildResult:
    """`write_site` with the build lock already held."""
    for path in files:
        if not _SAFE_RELATIVE.fullmatch(path) or ".." in path.split("/"):
            raise SiteError(f"refusing to write {path!r}: not a plain relative path")
    _adopt_existing(out_dir, store)
    current = _current_generation(out_dir)
    final = store / generation_name(files)
    if current == final:
        return BuildResult(out_dir, final, len(files), (), 0)
    changed = _write_generation(files, store, final, current)
    _point(out_dir, final)
    _collect(store, keep={final, current})
    return BuildResult(out_dir, final, len(files), changed, 0)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build at a time per output folder."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


# -------------------------------------------------------------------------------------------- reading


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
        except (FileNotFoundError, NotADirectoryError):
            return None
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            with open(full, "rb") as handle:
                key = _stat_key(os.fstat(handle.fileno()))
                data = handle.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
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
