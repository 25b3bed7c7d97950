"""The web app (gunicorn on deploy/gunicorn.conf.py) while its PostgreSQL is down, and readiness against liveness.

Feeds and archive pages keep coming from the built site; a posted form gets a 503 page with Retry-After in
the reader's language, never a traceback; /healthz (liveness) stays 200 while /readyz (readiness) says 503 and
names the database; once PostgreSQL is back, everything answers again without restarting the app.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import requests
from builders import make_app, make_settings
from ops_support import start_web, wait_until
from pg_cluster import PrivateCluster, free_port_in_range

from feedsvc.config import Settings
from feedsvc.site.build import build

pytestmark = pytest.mark.slow
SEED_NUMBER_PAGE = re.compile(r'href="(/issues/\d+)"')


def _get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=10, allow_redirects=False)


def _up(url: str) -> bool:
    try:
        return _get(url + "/healthz").status_code == 200
    except requests.RequestException:  # not listening yet, or still loading the app
        return False


def _subscribe(client: requests.Session, url: str, email: str, query: str = "", **headers: str) -> requests.Response:
    form = client.get(f"{url}/subscribe{query}", headers=headers, timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    return client.post(
        f"{url}/subscribe{query}",
        data={"csrf_token": token, "email": email, "sections": ["industry"]},
        headers=headers,
        timeout=10,
        allow_redirects=False,
    )


def test_while_postgres_is_down_pages_still_serve_forms_answer_503_and_all_recovers(
    pg_cluster: PrivateCluster, private_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, private_url)
    build(settings.issues_dir, settings.site_dir, settings.publication, settings.templates_dir)
    port = free_port_in_range()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "web.log"
    web = start_web(settings, port, log)
    try:
        wait_until(lambda: _up(url) or web.poll() is not None, 120, "gunicorn up")
        client = requests.Session()
        ready = _get(url + "/readyz")
        assert ready.status_code == 200, ready.text
        assert json.loads(ready.text) == {"status": "ready", "database": "ok", "site": "built"}
        archive = _get(url + "/issues/")
        issue_page = SEED_NUMBER_PAGE.search(archive.text).group(1)  # type: ignore[union-attr]
        pages = ["/feeds/all.atom", "/feeds/all.json", "/issues/", issue_page, "/issues/?lang=en", "/feeds.opml"]
        before = {path: _get(url + path).content for path in pages}

        pg_cluster.stop()
        for path in pages:  # from the built site, byte for byte
            answer = _get(url + path)
            assert answer.status_code == 200 and answer.content == before[path], path
        assert _get(url + "/healthz").status_code == 200  # liveness: the process is up
        unready = _get(url + "/readyz")
        assert unready.status_code == 503 and unready.headers["Content-Type"].startswith("application/json")
        body = json.loads(unready.text)
        assert body["status"] == "unready" and body["database"].startswith("unreachable") and body["site"] == "built"

        chinese = _subscribe(client, url, "reader@example.org")
        english = _subscribe(client, url, "reader@example.org", **{"Accept-Language": "en-GB,en;q=0.9"})
        switched = _subscribe(requests.Session(), url, "reader@example.org", query="?lang=en")
        for answer in (chinese, english, switched):
            assert answer.status_code == 503
            assert answer.headers["Retry-After"] == "30"
            assert "Traceback" not in answer.text and "OperationalError" not in answer.text
        assert "暂时无法处理" in chinese.text and 'lang="zh-CN"' in chinese.text
        assert "Temporarily unavailable" in english.text and "Temporarily unavailable" in switched.text

        pg_cluster.start()  # and the same process answers again, by itself
        wait_until(lambda: _get(url + "/readyz").status_code == 200, 60, "ready again")
        back = _subscribe(client, url, "reader@example.org")
        assert back.status_code == 200 and "暂时无法处理" not in back.text
    finally:
        web.terminate()
        web.wait(20)
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in text, text[-3000:]
    assert "database unavailable, answered 503" in text


def test_readiness_names_a_missing_site_and_liveness_does_not_care(settings: Settings) -> None:
    with make_app(settings) as app:
        client = app.test_client()
        unbuilt = client.get("/readyz")
        assert client.get("/healthz").status_code == 200
        build(settings.issues_dir, settings.site_dir, settings.publication, settings.templates_dir)
        built = client.get("/readyz")
    assert unbuilt.status_code == 503 and unbuilt.get_json() == {
        "status": "unready",
        "database": "ok",
        "site": "missing",
    }
    assert built.status_code == 200 and built.get_json() == {"status": "ready", "database": "ok", "site": "built"}
    assert built.headers["Cache-Control"] == "no-store"
