"""Feeds and archive pages over HTTP: content types, validators, 304s, HEAD, gzip, Vary, rebuilds."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest
from werkzeug.http import http_date

from feedsvc.config import Settings
from feedsvc.web import create_app

NAMES = ("industry", "content", "technology", "capital", "people", "research", "all", "issues")


@pytest.mark.parametrize("name", NAMES)
def test_feeds_are_served_with_their_types(client, name: str, seed_counts: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    atom = client.get(f"/feeds/{name}.atom")
    assert atom.status_code == 200
    assert atom.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    parsed = feedparser.parse(atom.data)
    assert parsed.bozo == 0
    expected = {"all": 27, "issues": 1}.get(name) or seed_counts[name]
    assert len(parsed.entries) == expected
    document = client.get(f"/feeds/{name}.json")
    assert document.headers["Content-Type"] == "application/feed+json; charset=utf-8"
    assert len(json.loads(document.data)["items"]) == expected


def test_validators_and_cache_headers(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/feeds/technology.atom")
    etag = response.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)  # strong: no W/ prefix
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.headers["Vary"] == "Accept-Encoding"
    assert "Last-Modified" in response.headers
    assert client.get("/feeds/technology.atom").headers["ETag"] == etag
    assert client.get("/feeds/industry.atom").headers["ETag"] != etag


def test_if_none_match_gives_304(client) -> None:  # type: ignore[no-untyped-def]
    full = client.get("/feeds/all.atom")
    etag = full.headers["ETag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = client.get("/feeds/all.atom", headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.data == b""
        assert response.headers["ETag"] == etag
        # a cache merges a 304's headers into what it stored: the feed's policy, not a page's
        assert response.headers["Content-Security-Policy"] == full.headers["Content-Security-Policy"]
    assert client.get("/feeds/all.atom", headers={"If-None-Match": '"other"'}).status_code == 200


def test_if_modified_since_gives_304(client) -> None:  # type: ignore[no-untyped-def]
    last_modified = client.get("/feeds/all.atom").headers["Last-Modified"]
    assert client.get("/feeds/all.atom", headers={"If-Modified-Since": last_modified}).status_code == 304
    later = http_date(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert client.get("/feeds/all.atom", headers={"If-Modified-Since": later}).status_code == 304
    assert client.get("/feeds/all.atom", headers={"If-Modified-Since": http_date(0)}).status_code == 200


def test_if_none_match_wins_over_if_modified_since(client) -> None:  # type: ignore[no-untyped-def]
    last_modified = client.get("/feeds/all.atom").headers["Last-Modified"]
    headers = {"If-None-Match": '"stale"', "If-Modified-Since": last_modified}
    assert client.get("/feeds/all.atom", headers=headers).status_code == 200


def test_head_gives_headers_without_a_body(client) -> None:  # type: ignore[no-untyped-def]
    full = client.get("/feeds/all.atom")
    head = client.head("/feeds/all.atom")
    assert head.status_code == 200
    assert head.data == b""
    assert head.headers["Content-Length"] == str(len(full.data))
    assert head.headers["ETag"] == full.headers["ETag"]


@pytest.mark.parametrize("path", ["/feeds/all.atom", "/feeds/all.json", "/issues/", "/issues/398"])
def test_gzip_when_asked(client, path: str) -> None:  # type: ignore[no-untyped-def]
    plain = client.get(path)
    packed = client.get(path, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert gzip.decompress(packed.data) == plain.data
    assert len(packed.data) < len(plain.data)
    assert packed.headers["ETag"] != plain.headers["ETag"]  # a different representation, a different strong ETag
    again = client.get(path, headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]})
    assert again.status_code == 304
    assert client.get(path, headers={"Accept-Encoding": "gzip;q=0"}).headers.get("Content-Encoding") is None


def test_archive_pages_have_validators_and_vary_on_language(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/issues/398")
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert {"Accept-Encoding", "Accept-Language", "Cookie"} <= {v.strip() for v in page.headers["Vary"].split(",")}
    assert client.get("/issues/398", headers={"If-None-Match": page.headers["ETag"]}).status_code == 304
    english = client.get("/issues/398?lang=en")
    assert english.headers["ETag"] != page.headers["ETag"]
    assert '<html lang="en">' in english.get_data(as_text=True)


def test_a_rebuilt_site_is_served_without_a_restart(
    client, built: Settings, write_issue: Callable[..., Path], rebuild: Callable[[Settings], None]
) -> None:  # type: ignore[no-untyped-def]
    before = client.get("/feeds/technology.atom")
    untouched = client.get("/feeds/research.atom")
    assert client.get("/issues/399").status_code == 404
    write_issue(399, dt.date(2024, 1, 29), {"技术": [("新的一条技术动态", "正文。")]})
    rebuild(built)
    after = client.get("/feeds/technology.atom")
    assert after.headers["ETag"] != before.headers["ETag"]
    assert len(feedparser.parse(after.data).entries) == 5
    assert client.get("/feeds/technology.atom", headers={"If-None-Match": before.headers["ETag"]}).status_code == 200
    research = client.get("/feeds/research.atom", headers={"If-None-Match": untouched.headers["ETag"]})
    assert research.status_code == 304
    assert client.get("/feeds/research.atom").headers["Last-Modified"] == untouched.headers["Last-Modified"]
    assert client.get("/issues/399").status_code == 200
    assert "第 399 期" in client.get("/").get_data(as_text=True)


def test_healthz(client, site_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "site": "built"}
    assert response.headers["Cache-Control"] == "no-store"


def test_before_any_build_the_app_still_answers(site_settings: Settings) -> None:
    client = create_app(site_settings, TESTING=True).test_client()
    assert client.get("/healthz").json == {"status": "ok", "site": "missing"}
    assert client.get("/feeds/all.atom").status_code == 404
    landing = client.get("/")
    assert landing.status_code == 200
    assert "feedsvc build" in landing.get_data(as_text=True)


def test_the_file_cache_stays_within_its_byte_budget(built: Settings) -> None:
    from feedsvc.site.reader import SiteReader

    reader = SiteReader(built.site_dir, max_bytes=60_000)
    paths = [f"feeds/{name}.atom" for name in NAMES] + ["issues/398.html", "issues/index.html"]
    for path in paths:
        found = reader.get(path)
        assert found is not None and found.data == (built.site_dir / path).read_bytes()
        single = len(found.data) + len(found.gzipped)
        assert reader.cached_bytes <= 60_000 or reader.cached_bytes == single  # a file larger than the budget
    assert reader.get("issues/398.html") is reader.get("issues/398.html")  # a hit is the cached object
    assert reader.get("feeds/nope.atom") is None
