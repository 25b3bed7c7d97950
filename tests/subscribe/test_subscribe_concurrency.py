"""50 sign-ups of one address at once: one subscriber, one confirmation mail (SQLite and PostgreSQL).

Each request is a separate browser (own session and CSRF token, own client address), released together
by a barrier, so the requests race inside the database, where the guarantee lives.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select
from subscribe_support import CSRF, Mailbox, csrf, live_stack

from feedsvc.config import Settings
from feedsvc.db.engine import Database
from feedsvc.db.models import OutboxMessage, Subscriber, SubscriberSection

CLIENTS = 50


def test_fifty_concurrent_signups_of_one_address(app: Flask, mailbox: Mailbox) -> None:
    clients = []
    for n in range(CLIENTS):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"10.0.{n // 250}.{n % 250 + 1}"
        clients.append((client, csrf(client)))
    barrier = threading.Barrier(CLIENTS)
    statuses: list[int] = []
    lock = threading.Lock()

    def sign_up(index: int) -> None:
        client, token = clients[index]
        form = {"csrf_token": token, "email": "Same.Reader@Example.org", "sections": ["industry", "people"]}
        barrier.wait()
        response = client.post("/subscribe", data=form)
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * CLIENTS
    with app.extensions["feedsvc.db"].session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Subscriber)) == 1
        assert s.scalar(select(func.count()).select_from(SubscriberSection)) == 2
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    [mail] = mailbox.deliver()
    assert mail["To"] == "same.reader@example.org"


def test_fifty_concurrent_signups_across_gunicorn_processes(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """The same through gunicorn (2 processes) behind a trusted proxy: 50 clients, one address, one mail."""
    with live_stack(settings, database_url, tmp_path, {"FEEDSVC_TRUSTED_PROXIES": "1"}) as live:
        port = int(live.url.rsplit(":", 1)[1])
        clients = []
        for n in range(CLIENTS):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            forwarded = {"X-Forwarded-For": f"198.51.100.{n + 1}"}
            connection.request("GET", "/subscribe", headers=forwarded)
            response = connection.getresponse()
            page = response.read().decode()
            cookie = (response.getheader("Set-Cookie") or "").split(";", 1)[0]
            match = CSRF.search(page)
            assert match
            body = urllib.parse.urlencode(
                {"csrf_token": match.group(1), "email": "same@example.org", "sections": "people"}
            )
            headers = {**forwarded, "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
            clients.append((connection, body, headers))
        barrier = threading.Barrier(CLIENTS)
        statuses: list[int] = []
        lock = threading.Lock()

        def post(index: int) -> None:
            connection, body, headers = clients[index]
            barrier.wait()
            connection.request("POST", "/subscribe", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            with lock:
                statuses.append(response.status)
            connection.close()

        threads = [threading.Thread(target=post, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [200] * CLIENTS

        database = Database(database_url)
        try:
            [received] = live.sink.wait_for(1, timeout=30)
            assert received.rcpt_tos == ["same@example.org"]
            deadline = time.monotonic() + 30
            while True:  # wait for the worker to record the outcome of what the sink received
                with database.session(readonly=True) as s:
                    subscribers = s.scalar(select(func.count()).select_from(Subscriber))
                    states = list(s.scalars(select(OutboxMessage.state)))
                if states != ["sending"] or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert subscribers == 1
            assert states == ["sent"]  # one row, sent: the worker has nothing else to send
            assert len(live.sink.messages) == 1
        finally:
            database.dispose()
