"""Benchmark of feeds and the site: build time, and feed serving throughput relative to /healthz.

Prints:
  * `feedsvc build` time (parse + render + atomic write) for the seed issue and for 50 issues;
  * microseconds per request of the app alone (WSGI calls in process), as ratios to /healthz;
  * requests per second, from wrk against gunicorn on a loopback port, for /healthz, a feed (in full and
    gzipped) and the feed's 304 path (If-None-Match), each feed figure as a ratio to /healthz measured on
    the same server in the same run: the cases are interleaved in ROUNDS rounds and each ratio is the
    median of the per-round ratios.

  * the whole history (RFC 5005 archives): the build time for a back catalogue of 400 issues (10,800 items),
    and for adding the 401st to it, with how many archive documents kept their bytes and mtime.

Bounded: each load run lasts DURATION seconds; the whole bench takes about a minute and a half.
Run with `make bench` or `.venv/bin/python bench/feeds.py`; `--history` runs the back-catalogue part alone,
`--nginx` the nginx-against-gunicorn part (nginx with deploy/nginx.conf as shipped, as tests/deploy runs it,
in front of gunicorn; the same feed from each, in interleaved rounds) on the seed issue's site.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedsvc.config import load_publication  # noqa: E402
from feedsvc.site.build import build  # noqa: E402

SEED = ROOT / "issues" / "2024-01-22-398.md"
GENERATED_ISSUES = 50
HISTORY_ISSUES = 400
BUILD_RUNS = 5
DURATION = 2  # seconds per measured load run
ROUNDS = 5
ROUNDS_APP = 20
WARMUP = 1
CONNECTIONS = 8
WORKERS = 2
THREADS = 4


def generate_issues(folder: Path, count: int, last: int = 398, last_date: dt.date = dt.date(2024, 1, 22)) -> None:
    """`count` weekly issues made from the seed: numbers last, last - 1, …; dates a week apart."""
    text = SEED.read_text(encoding="utf-8")
    for offset in range(count):
        number = last - offset
        date = last_date - dt.timedelta(weeks=offset)
        issue = text.replace("第 398 期", f"第 {number} 期").replace(
            "2024 年 1 月 22 日", f"{date.year} 年 {date.month} 月 {date.day} 日"
        )
        (folder / f"{date.isoformat()}-{number}.md").write_text(issue, encoding="utf-8")


def time_builds(issues_dir: Path, work: Path, label: str) -> float:
    """Median seconds of BUILD_RUNS full builds, each into a fresh output folder."""
    publication = load_publication(ROOT / "feedsvc.toml")
    times = []
    for run in range(BUILD_RUNS):
        out = work / f"{label}-{run}" / "site"
        start = time.perf_counter()
        build(issues_dir, out, publication, ROOT / "templates")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, server: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not answer {url}") from None
            time.sleep(0.1)


def wrk(url: str, headers: dict[str, str], duration: int) -> float:
    """Requests per second that wrk measured (one thread, CONNECTIONS keep-alive connections)."""
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True, timeout=duration + 30).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        raise SystemExit(f"{url}: {non_2xx.group(1)} error responses during the run:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not match:
        raise SystemExit(f"could not read wrk's output:\n{output}")
    return float(match.group(1))


def fetch_headers(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], int]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), len(response.read())
    except urllib.error.HTTPError as error:  # 304 arrives as an HTTPError
        return error.code, dict(error.headers), 0


@contextmanager
def gunicorn(site_dir: Path, work: Path) -> Iterator[str]:
    """gunicorn serving `site_dir` on a free loopback port; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "FEEDSVC_CONFIG": str(ROOT / "feedsvc.toml"),
        "FEEDSVC_VAR_DIR": str(work / "var"),
        "FEEDSVC_SITE_DIR": str(site_dir),
        "FEEDSVC_SECRET_KEY": "bench",
        "FEEDSVC_BASE_URL": base,
    }
    command = [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--worker-class", "gthread"]
    command += ["--threads", str(THREADS), "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    command += ["--chdir", str(ROOT), "feedsvc.web:create_app()"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(f"{base}/healthz", server)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=60)


def serve_bench(site_dir: Path, work: Path) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run scripts/system-deps.sh (or apt-get install wrk)")
    with gunicorn(site_dir, work) as base:
        cases = [("/healthz", f"{base}/healthz", {}), *feed_cases(base, "technology"), *feed_cases(base, "all")[:1]]
        for _, url, headers in cases:
            wrk(url, headers, WARMUP)
        # Rounds interleave the cases, so that drift on a shared machine hits every case alike; each feed
        # figure is compared with /healthz of its own round.
        rates: dict[str, list[float]] = {label: [] for label, _, _ in cases}
        for _ in range(ROUNDS):
            for label, url, headers in cases:
                rates[label].append(wrk(url, headers, DURATION))
    print(
        f"serving: gunicorn {WORKERS} workers x {THREADS} threads (gthread), wrk 1 thread x {CONNECTIONS} "
        f"connections, loopback, {os.cpu_count()} CPUs; median of {ROUNDS} interleaved {DURATION} s runs; "
        f"load average {os.getloadavg()[0]:.1f} at the end (other work on the machine makes figures noisy)"
    )
    healthz = rates["/healthz"]
    print(f"  {'/healthz':<44} {statistics.median(healthz):8.0f} req/s")
    for label, values in list(rates.items())[1:]:
        ratio = statistics.median(v / h for v, h in zip(values, healthz, strict=True))
        print(f"  {label:<44} {statistics.median(values):8.0f} req/s   ratio to /healthz {ratio:.2f}")


@contextmanager
def nginx(site_dir: Path, app_base: str, work: Path) -> Iterator[str]:
    """Debian's nginx with deploy/nginx.conf as shipped (the deploy test's substitutions: paths, ports, an
    openssl certificate) in front of the gunicorn at `app_base`; yields its https base URL."""
    sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "deploy")]
    from smtp_support import self_signed_certificate
    from test_deploy_nginx import NGINX, main_config, shipped_config

    folder = work / "nginx"
    folder.mkdir()
    cert, key = self_signed_certificate(folder)
    https, http = free_port(), free_port()
    server_config = folder / "feedsvc.conf"
    server_config.write_text(shipped_config(site_dir, int(app_base.rsplit(":", 1)[1]), http, https, cert, key))
    (folder / "nginx.conf").write_text(main_config(folder, server_config, cert, key))
    command = [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"https://127.0.0.1:{https}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _nginx_etag(f"{base}/feeds/technology.atom", {"Host": "news.example.org"})
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"nginx did not answer {base}") from None
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=60)


def nginx_bench(site_dir: Path, work: Path) -> None:
    """The same feed from nginx (deploy/nginx.conf, https, the built file) and from gunicorn (the app, http)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run scripts/system-deps.sh (or apt-get install wrk)")
    host = {"Host": "news.example.org"}
    with gunicorn(site_dir, work) as app, nginx(site_dir, app, work) as front:
        path = "/feeds/technology.atom"
        etag = fetch_headers(f"{app}{path}", {})[1]["ETag"]
        cases = [
            ("200", {}),
            ("200 gzip", {"Accept-Encoding": "gzip"}),
            ("304 If-None-Match (each server's own ETag)", {}),
        ]
        front_etag = _nginx_etag(f"{front}{path}", host)
        runs: dict[str, dict[str, list[float]]] = {label: {"nginx": [], "gunicorn": []} for label, _ in cases}
        for _ in range(ROUNDS):
            for label, headers in cases:
                own = {"If-None-Match": etag} if label.startswith("304") else {}
                mine = {"If-None-Match": front_etag} if label.startswith("304") else {}
                runs[label]["gunicorn"].append(wrk(f"{app}{path}", {**headers, **own}, DURATION))
                runs[label]["nginx"].append(wrk(f"{front}{path}", {**headers, **host, **mine}, DURATION))
    print(
        f"nginx (deploy/nginx.conf as shipped, https, 1 worker process) against gunicorn ({WORKERS} workers x "
        f"{THREADS} threads, http) serving {path}, the same file; wrk 1 thread x {CONNECTIONS} connections, "
        f"median of {ROUNDS} interleaved {DURATION} s runs each"
    )
    for label, by_server in runs.items():
        ratio = statistics.median(n / g for n, g in zip(by_server["nginx"], by_server["gunicorn"], strict=True))
        print(
            f"  {label:<44} nginx {statistics.median(by_server['nginx']):8.0f} req/s   gunicorn "
            f"{statistics.median(by_server['gunicorn']):8.0f} req/s   nginx/gunicorn {ratio:.2f}"
        )


def _nginx_etag(url: str, headers: dict[str, str]) -> str:
    """The ETag nginx sends for `url` (over its test certificate)."""
    import ssl

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        assert response.headers["Server"] == "nginx", response.headers
        return str(response.headers["ETag"])


def feed_cases(base: str, feed: str) -> list[tuple[str, str, dict[str, str]]]:
    """A feed in full, gzipped, and its 304 path, checked once before they are measured."""
    url = f"{base}/feeds/{feed}.atom"
    status, headers, size = fetch_headers(url, {})
    _, _, gz_size = fetch_headers(url, {"Accept-Encoding": "gzip"})
    not_modified, _, _ = fetch_headers(url, {"If-None-Match": headers["ETag"]})
    assert status == 200 and not_modified == 304, (status, not_modified)
    return [
        (f"/feeds/{feed}.atom 200 ({size} B)", url, {}),
        (f"/feeds/{feed}.atom 200 gzip ({gz_size} B)", url, {"Accept-Encoding": "gzip"}),
        (f"/feeds/{feed}.atom 304 If-None-Match", url, {"If-None-Match": headers["ETag"]}),
    ]


def app_bench(site_dir: Path, work: Path) -> None:
    """The app alone (WSGI calls in this process, no server, no network): best of ROUNDS_APP batches.

    Less noisy than load over loopback on a shared machine, and shows what feedsvc itself adds per request.
    """
    from werkzeug.test import EnvironBuilder

    from feedsvc.config import load_settings
    from feedsvc.web import create_app

    env = {"FEEDSVC_VAR_DIR": str(work / "var"), "FEEDSVC_SITE_DIR": str(site_dir), "FEEDSVC_SECRET_KEY": "bench"}
    app = create_app(load_settings(ROOT / "feedsvc.toml", env=env))
    client = app.test_client()
    etag = client.get("/feeds/technology.atom").headers["ETag"]
    cases = {
        "/healthz": ("/healthz", {}),
        "/feeds/technology.atom 200": ("/feeds/technology.atom", {}),
        "/feeds/technology.atom 200 gzip": ("/feeds/technology.atom", {"Accept-Encoding": "gzip, deflate, br"}),
        "/feeds/technology.atom 304": ("/feeds/technology.atom", {"If-None-Match": etag}),
        "/issues/398 200": ("/issues/398", {}),
    }
    environs = {
        label: EnvironBuilder(path=path, headers=headers).get_environ() for label, (path, headers) in cases.items()
    }

    def batch(environ: dict[str, object], calls: int = 300) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            for _chunk in app.wsgi_app(dict(environ), lambda status, headers, exc_info=None: None):
                pass
        return (time.perf_counter() - start) / calls

    best = {label: batch(environs[label]) for label in cases}  # the first batch also warms up
    for _ in range(ROUNDS_APP):
        for label in cases:
            best[label] = min(best[label], batch(environs[label]))
    print(f"app only (WSGI in process, best of {ROUNDS_APP} batches of 300 calls):")
    for label, seconds in best.items():
        ratio = best["/healthz"] / seconds
        print(f"  {label:<44} {seconds * 1e6:8.1f} us/request   ratio to /healthz {ratio:.2f}")


def history_bench(work: Path) -> None:
    """Build 400 issues from nothing, then add the 401st: times, and what the incremental build kept."""
    publication = load_publication(ROOT / "feedsvc.toml")
    issues_dir, out = work / "history", work / "history-site" / "site"
    issues_dir.mkdir()
    generate_issues(issues_dir, HISTORY_ISSUES, last=HISTORY_ISSUES, last_date=dt.date(2024, 2, 5))
    start = time.perf_counter()
    first = build(issues_dir, out, publication, ROOT / "templates")
    full = time.perf_counter() - start
    archives = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.resolve().rglob("archive/*")}
    generate_issues(issues_dir, 1, last=HISTORY_ISSUES + 1, last_date=dt.date(2024, 2, 12))
    start = time.perf_counter()
    second = build(issues_dir, out, publication, ROOT / "templates")
    incremental = time.perf_counter() - start
    root = out.resolve()
    kept = 0
    for path, before in archives.items():
        now = root / path.relative_to(first.generation)
        if now.exists() and (now.stat().st_ino, now.stat().st_mtime_ns) == before:
            kept += 1
    print(f"history ([feeds] limit = {publication.feed_limit}), one run each:")
    print(f"  {HISTORY_ISSUES} issues ({HISTORY_ISSUES * 27} items), from nothing: {full:8.1f} s, {first.files} files")
    print(
        f"  adding issue {HISTORY_ISSUES + 1}:                     {incremental:8.1f} s, {len(second.changed)} files "
        f"changed; {kept} of {len(archives)} archive documents kept their bytes and mtime"
    )


def main() -> None:
    if "--history" in sys.argv[1:]:
        with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
            history_bench(Path(tmp))
        return
    if "--nginx" in sys.argv[1:]:  # nginx against gunicorn alone, on the seed issue's site
        with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
            work = Path(tmp)
            build(SEED.parent, work / "site", load_publication(ROOT / "feedsvc.toml"), ROOT / "templates")
            nginx_bench(work / "site", work)
        return
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        work = Path(tmp)
        seed_dir = work / "seed"
        seed_dir.mkdir()
        shutil.copy(SEED, seed_dir / SEED.name)
        many_dir = work / "many"
        many_dir.mkdir()
        generate_issues(many_dir, GENERATED_ISSUES)
        seed_time = time_builds(seed_dir, work, "seed")
        many_time = time_builds(many_dir, work, "many")
        print(f"build (parse + render + atomic write), median of {BUILD_RUNS}:")
        print(f"  seed issue (27 items):          {seed_time * 1000:8.1f} ms")
        print(f"  {GENERATED_ISSUES} issues ({GENERATED_ISSUES * 27} items):       {many_time * 1000:8.1f} ms")
        app_bench(work / "many-0" / "site", work)
        serve_bench(work / "many-0" / "site", work)
        nginx_bench(work / "many-0" / "site", work)
        history_bench(work)


if __name__ == "__main__":
    main()
