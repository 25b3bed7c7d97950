"""50 sign-ups of one address at once: one subscriber, one confirmation mail (SQLite and PostgreSQL).

Each request is a separate browser (own session and CSRF token, own client address), released together
by a barrier, so the requests race inside the database, where the guarantee lives.
"""

from __future__ import annotations

import threading

from flask import Flask
from sqlalchemy import func, select
from subscribe_support import Mailbox, csrf

from feedsvc.models import OutboxMessage, Subscriber, SubscriberSection

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
