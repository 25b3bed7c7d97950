"""The whole history (RFC 5005): the subscription document holds the newest `limit` entries, archives the
rest; walking ``prev-archive`` (Atom) or ``next_url`` (JSON Feed) from any feed yields every entry exactly once;
full archives never change; archives are served with a long cache lifetime."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from feedwalk import SEED_ITEMS, site_path, walk_atom, walk_json, write_catalogue, write_seed_copy
from lxml import etree

from feedsvc.config import Publication, Settings
from feedsvc.content.reader import issue_files, load_issues
from feedsvc.site.build import build
from feedsvc.site.feeds import build_feeds, feed_names
from feedsvc.web import create_app

ATOM = "{http://www.w3.org/2005/Atom}"
FH_ARCHIVE = "{http://purl.org/syndication/history/1.0}archive"
SCHEMA = json.loads((Path(__file__).with_name("jsonfeed-1.1.schema.json")).read_text("utf-8"))
LIMIT = 10
ISSUES = 12  # technology: 48 entries = 10 in the subscription document, 3 full archives and one of 8


@pytest.fixture
def history(site_settings: Settings) -> tuple[Settings, Publication]:
    """Twelve weekly issues built with a feed limit of 10."""
    write_catalogue(site_settings.issues_dir, ISSUES)
    publication = replace(site_settings.publication, feed_limit=LIMIT)
    build(site_settings.issues_dir, site_settings.site_dir, publication, site_settings.templates_dir)
    return site_settings, publication


def expected_ids(site_settings: Settings, publication: Publication) -> dict[str, list[str]]:
    """Feed name → every entry id it ever published, newest first."""
    issues = load_issues(issue_files(site_settings.issues_dir), publication)
    return {feed.name: [e.id for e in feed.entries] for feed in build_feeds(issues, publication)}


def test_subscription_document_has_the_newest_entries_and_archives_the_rest(history) -> None:  # type: ignore[no-untyped-def]
    site_settings, publication = history
    base = publication.base_url
    walked = walk_atom(site_settings.site_dir, base, "technology")
    assert [url for url, _ in walked] == [
        f"{base}/feeds/technology.atom",
        f"{base}/feeds/technology/archive/4-8.atom",  # not full yet: its URL says how many it holds
        f"{base}/feeds/technology/archive/3.atom",
        f"{base}/feeds/technology/archive/2.atom",
        f"{base}/feeds/technology/archive/1.atom",
    ]
    newest = expected_ids(site_settings, publication)["technology"]
    assert [e.id for e in walked[0][1].entries] == newest[:LIMIT]
    assert [len(parsed.entries) for _, parsed in walked] == [10, 8, 10, 10, 10]
    assert [e.id for e in walked[-1][1].entries] == newest[-10:]  # archive 1 holds the oldest ten


def test_archive_documents_carry_fh_archive_self_current_and_prev(history) -> None:  # type: ignore[no-untyped-def]
    site_settings, publication = history
    base = publication.base_url
    for name in feed_names(publication):
        walked = walk_atom(site_settings.site_dir, base, name)
        for position, (url, parsed) in enumerate(walked):
            assert parsed.bozo == 0, (url, parsed.get("bozo_exception"))
            root = etree.parse(str(site_path(site_settings.site_dir, base, url))).getroot()
            links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
            assert links["self"] == url
            assert (root.find(FH_ARCHIVE) is not None) == (position > 0)
            if position > 0:
                assert links["current"] == f"{base}/feeds/{name}.atom"
            assert ("prev-archive" in links) == (position < len(walked) - 1)
            assert "next-archive" not in links


def test_walking_prev_archive_yields_every_entry_exactly_once(history) -> None:  # type: ignore[no-untyped-def]
    site_settings, publication = history
    expected = expected_ids(site_settings, publication)
    assert len(expected["all"]) == ISSUES * SEED_ITEMS
    for name in feed_names(publication):
        atom_ids = [
            e.id for _, parsed in walk_atom(site_settings.site_dir, publication.base_url, name) for e in parsed.entries
        ]
        json_ids = [
            i["id"] for _, doc in walk_json(site_settings.site_dir, publication.base_url, name) for i in doc["items"]
        ]
        assert atom_ids == json_ids == expected[name], name  # each once, newest first across the documents
        assert Counter(atom_ids).most_common(1)[0][1] == 1


def test_every_json_feed_page_is_valid_json_feed_1_1(history) -> None:  # type: ignore[no-untyped-def]
    site_settings, publication = history
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    pages = [
        doc
        for name in feed_names(publication)
        for _, doc in walk_json(site_settings.site_dir, publication.base_url, name)
    ]
    assert len(pages) > len(feed_names(publication))  # archives too
    for document in pages:
        errors = sorted(validator.iter_errors(document), key=str)
        assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    assert sum("next_url" in doc for doc in pages) == len(pages) - len(feed_names(publication))


def test_the_schema_rejects_what_json_feed_1_1_forbids() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    good = {"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [{"id": "1", "content_html": "x"}]}
    assert validator.is_valid(good)
    for broken in (
        {**good, "version": "https://jsonfeed.org/version/1"},
        {**good, "items": [{"id": "1"}]},  # neither content_html nor content_text
        {**good, "items": [{"id": "1", "content_text": "x", "date_published": "22 Jan 2024"}]},
        {**good, "hubs": [{"url": "https://hub.example.org/"}]},
        {**good, "nexturl": "https://example.org/"},
    ):
        assert not validator.is_valid(broken), broken


def test_adding_an_issue_keeps_every_full_archive_byte_for_byte(history) -> None:  # type: ignore[no-untyped-def]
    site_settings, publication = history
    feeds = site_settings.site_dir.resolve() / "feeds"
    before = {p.relative_to(feeds): (p.read_bytes(), p.stat()) for p in feeds.rglob("*") if p.is_file()}
    write_seed_copy(site_settings.issues_dir, 399, dt.date(2024, 1, 29))
    build(site_settings.issues_dir, site_settings.site_dir, publication, site_settings.templates_dir)
    feeds = site_settings.site_dir.resolve() / "feeds"
    after = {p.relative_to(feeds): p for p in feeds.rglob("*") if p.is_file()}
    full = [path for path in before if "archive" in path.parts and "-" not in path.name]
    assert len(full) > 20
    for path in full:
        data, stat = before[path]
        assert after[path].read_bytes() == data, path
        assert (after[path].stat().st_ino, after[path].stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), path
    assert Path("technology/archive/4-8.atom") in before and Path("technology/archive/4-8.atom") not in after
    assert Path("technology/archive/5-2.atom") in after  # 52 entries: 10 current, 4 full archives, 2 more


def test_archives_are_served_with_a_long_cache_lifetime(history) -> None:  # type: ignore[no-untyped-def]
    site_settings, _ = history
    client = create_app(site_settings, TESTING=True).test_client()
    archive = client.get("/feeds/technology/archive/2.atom")
    assert archive.status_code == 200
    assert archive.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert archive.headers["Cache-Control"] == "public, max-age=2592000"
    assert client.get("/feeds/technology/archive/4-8.json").headers["Cache-Control"] == "public, max-age=2592000"
    assert client.get("/feeds/technology.atom").headers["Cache-Control"] == "public, max-age=300"
    again = client.get("/feeds/technology/archive/2.atom", headers={"If-None-Match": archive.headers["ETag"]})
    assert again.status_code == 304
    for missing in ("/feeds/technology/archive/9.atom", "/feeds/technology/archive/0.atom", "/feeds/x/archive/1.html"):
        assert client.get(missing).status_code == 404, missing


@pytest.mark.slow
def test_a_back_catalogue_of_400_issues(site_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """400 issues (10,800 items): feedparser walks every feed's archives and collects each id exactly once;
    adding the 401st keeps every full archive's bytes and mtime."""
    (site_settings.issues_dir / "2024-01-22-398.md").unlink()
    write_catalogue(site_settings.issues_dir, 400, last=400, last_date=dt.date(2024, 2, 5))
    publication = site_settings.publication
    start = time.perf_counter()
    build(site_settings.issues_dir, site_settings.site_dir, publication, site_settings.templates_dir)
    first = time.perf_counter() - start
    expected = expected_ids(site_settings, publication)
    assert len(expected["all"]) == 400 * SEED_ITEMS == 10_800
    for name in feed_names(publication):
        walked = walk_atom(site_settings.site_dir, publication.base_url, name)
        assert all(parsed.bozo == 0 for _, parsed in walked), name
        ids = [entry.id for _, parsed in walked for entry in parsed.entries]
        assert ids == expected[name] and len(set(ids)) == len(ids), name
    feeds = site_settings.site_dir.resolve() / "feeds"
    archives = {p: p.stat() for p in feeds.rglob("archive/*") if "-" not in p.name}
    write_seed_copy(site_settings.issues_dir, 401, dt.date(2024, 2, 12))
    start = time.perf_counter()
    build(site_settings.issues_dir, site_settings.site_dir, publication, site_settings.templates_dir)
    second = time.perf_counter() - start
    feeds = site_settings.site_dir.resolve() / "feeds"
    for path, stat in archives.items():
        now = (feeds / path.relative_to(path.parents[2])).stat()
        assert (now.st_ino, now.st_mtime_ns, now.st_size) == (stat.st_ino, stat.st_mtime_ns, stat.st_size), path
    with capsys.disabled():
        print(f"\n400 issues: build {first:.1f} s; adding the 401st: {second:.1f} s ({len(archives)} archives kept)")
