"""The deploy that ships is the deploy that is tested: Debian's nginx runs deploy/nginx.conf as shipped (only paths,
ports and an openssl certificate substituted) in front of gunicorn with deploy/gunicorn.conf.py."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from smtp_support import free_port, self_signed_certificate

from feedsvc.config import Settings
from feedsvc.site.build import build

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HOST = "news.example.org"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
    pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (scripts/system-deps.sh)"),
]


def shipped_config(site: Path, app_port: int, http: int, https: int, cert: Path, key: Path) -> str:
    """deploy/nginx.conf with only its paths, ports and certificate substituted."""
    text = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    for old, new in [
        ("127.0.0.1:8000", f"127.0.0.1:{app_port}"),
        ("listen 443 ", f"listen {https} "),
        ("listen 80", f"listen {http}"),
        ("/srv/feedsvc/var/site", str(site)),
        ("# ssl_certificate /etc/letsencrypt/live/news.example.org/fullchain.pem", f"ssl_certificate {cert}"),
        ("# ssl_certificate_key /etc/letsencrypt/live/news.example.org/privkey.pem", f"ssl_certificate_key {key}"),
        (f"https://{HOST}$request_uri", f"https://{HOST}:{https}$request_uri"),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    return text


def main_config(tmp: Path, server_config: Path, cert: Path, key: Path) -> str:
    """The nginx.conf a Debian host has around conf.d/, reduced to what the test needs."""
    user = "user root;" if os.getuid() == 0 else ""
    return f"""{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    ssl_certificate {cert}; ssl_certificate_key {key};
    include {server_config};
}}
"""


def wait_until_up(url: str, processes: list[subprocess.Popen[bytes]], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), log.read_text(errors="replace")[-3000:]
        try:
            if requests.get(url, timeout=3, verify=False, headers={"Host": HOST}).status_code == 200:  # noqa: S501 - the test certificate
                return
        except requests.RequestException:
            pass
        else:
            time.sleep(0.2)
    raise AssertionError(log.read_text(errors="replace")[-3000:])


@pytest.fixture
def stack(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """nginx on https (and http) in front of gunicorn; yields the https base URL. An indirect parameter adds
    environment variables for gunicorn."""
    build(settings.issues_dir, settings.site_dir, settings.publication, settings.templates_dir)
    app_port, http, https = free_port(), free_port(), free_port()
    cert, key = self_signed_certificate(tmp_path)
    conf_dir = tmp_path / "nginx"
    conf_dir.mkdir()
    server = conf_dir / "feedsvc.conf"
    server.write_text(shipped_config(settings.site_dir, app_port, http, https, cert, key))
    (conf_dir / "nginx.conf").write_text(main_config(conf_dir, server, cert, key))
    env = {
        **os.environ,
        "FEEDSVC_CONFIG": str(ROOT / "feedsvc.toml"),
        "FEEDSVC_VAR_DIR": str(settings.var_dir),
        "FEEDSVC_ISSUES_DIR": str(settings.issues_dir),
        "FEEDSVC_SECRET_KEY": settings.secret_key,
        "FEEDSVC_BASE_URL": f"https://{HOST}",
        "DATABASE_URL": settings.database_url,
        "FEEDSVC_BIND": f"127.0.0.1:{app_port}",
        "FEEDSVC_WEB_WORKERS": "2",
        "FEEDSVC_TRUSTED_PROXIES": "1",
        **getattr(request, "param", {}),
    }
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        processes = [
            subprocess.Popen(
                [BIN / "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "feedsvc.web:create_app()"],
                env=env,
                stdout=out,
                stderr=out,
                cwd=ROOT,
            ),
            subprocess.Popen(
                [NGINX, "-p", str(conf_dir), "-c", str(conf_dir / "nginx.conf"), "-g", "daemon off;"],
                stdout=out,
                stderr=out,
            ),
        ]
    try:
        wait_until_up(f"https://127.0.0.1:{https}/healthz", processes, log)
        yield f"https://127.0.0.1:{https}", http
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers={"Host": HOST, **headers}, verify=False, allow_redirects=False, timeout=10)  # noqa: S501 - the test certificate


def test_feeds_come_from_nginx_with_charset_etag_304_and_gzip(stack, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    base, _ = stack
    atom = next(p for p in (settings.site_dir / "feeds").rglob("*.atom"))
    path = "/" + atom.relative_to(settings.site_dir).as_posix()
    first = get(base + path, **{"Accept-Encoding": "identity"})
    assert first.status_code == 200
    assert first.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert first.headers["Server"] == "nginx"
    assert first.content == atom.read_bytes()
    etag = first.headers["ETag"]
    assert get(base + path, **{"If-None-Match": etag}).status_code == 304
    zipped = get(base + path, **{"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.content == atom.read_bytes()  # requests inflates it


def test_http_redirects_to_https(stack) -> None:  # type: ignore[no-untyped-def]
    _, http = stack
    answer = get(f"http://127.0.0.1:{http}/feeds/")
    assert answer.status_code == 301
    assert answer.headers["Location"].startswith(f"https://{HOST}:")


def test_the_app_is_proxied_and_the_form_rate_limit_answers_429(stack) -> None:  # type: ignore[no-untyped-def]
    base, _ = stack
    assert get(base + "/healthz").status_code == 200
    statuses = [
        requests.post(
            base + "/subscribe",
            data={"email": "x"},
            headers={"Host": HOST},
            verify=False,  # noqa: S501 - the test certificate
            timeout=10,
        ).status_code
        for _ in range(10)
    ]
    assert 429 in statuses, statuses


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Reader:
    """A browser at one loopback source address: GETs the form (cookie and CSRF token), then signs up."""

    def __init__(self, base: str, source: str) -> None:
        port = int(base.rsplit(":", 1)[1])
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the test certificate
        self.connection = http.client.HTTPSConnection(
            "127.0.0.1", port, source_address=(source, 0), context=context, timeout=10
        )
        self.cookie = self.csrf = ""

    def send(self, method: str, path: str, body: str | None = None) -> http.client.HTTPResponse:
        headers = {"Host": HOST, **({"Cookie": self.cookie} if self.cookie else {})}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        response.body = response.read().decode("utf-8", "replace")  # type: ignore[attr-defined]
        cookie = response.getheader("Set-Cookie")
        self.cookie = cookie.split(";", 1)[0] if cookie else self.cookie
        return response

    def open_form(self) -> None:
        page = self.send("GET", "/subscribe")
        assert page.status == 200 and page.getheader("Server") == "nginx", page.status
        self.csrf = CSRF.search(page.body).group(1)  # type: ignore[attr-defined, union-attr]

    def sign_up(self, email: str) -> http.client.HTTPResponse:
        form = urllib.parse.urlencode({"csrf_token": self.csrf, "email": email, "sections": ["industry"]}, doseq=True)
        return self.send("POST", "/subscribe", form)


@pytest.mark.parametrize("stack", [{"FEEDSVC_SIGNUP_RATE_LIMIT": "3/600"}], indirect=True)
def test_the_readers_address_reaches_the_apps_rate_limit_through_nginx(stack) -> None:  # type: ignore[no-untyped-def]
    # Below nginx's own form limit (burst 5), the app's per-client limit (3 sign-ups here) is what answers:
    # it counts the address nginx saw (X-Forwarded-For, FEEDSVC_TRUSTED_PROXIES=1), not nginx's own 127.0.0.1.
    base, _ = stack
    first = Reader(base, "127.0.0.1")
    first.open_form()
    answers = [first.sign_up(f"reader{n}@example.org") for n in range(4)]
    assert [a.status for a in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert limited.getheader("Retry-After") and "Content-Security-Policy" in limited.headers  # the app's page
    other = Reader(base, "127.0.0.2")  # another reader, another address: not limited
    other.open_form()
    assert other.sign_up("someone.else@example.org").status == 200
    assert first.sign_up("reader9@example.org").status == 429  # and the first one still is
