"""The SMTP pool against real loopback servers: reuse, classification, reconnects, rate limiting."""

from __future__ import annotations

import smtplib
import socket
import threading
from email.message import EmailMessage

import pytest
from smtp_misbehaving import MisbehavingSmtp, free_port

from feedsvc.smtp_pool import SendFailure, SmtpPool, TokenBucket, classify, connect_url, serialise


def message(to: str, n: int = 0) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "周报 <news@example.org>"
    msg["To"] = to
    msg["Subject"] = f"第 {n} 期"
    msg["Message-ID"] = f"<{n}.{to}>"
    msg.set_content("正文\n.leading dot survives\n")
    return msg


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_sink_gets_every_message_once_over_few_connections() -> None:
    with MisbehavingSmtp() as server, SmtpPool.from_url(server.url, size=3) as pool:
        addresses = [f"user{i}@example.org" for i in range(60)]
        threads = [
            threading.Thread(target=lambda part: [pool.send_message(message(a)) for a in part], args=(addresses[k::3],))
            for k in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert server.accepted == dict.fromkeys(addresses, 1)
        assert pool.opened <= 3


def test_send_message_returns_the_message_id_and_keeps_the_body() -> None:
    with MisbehavingSmtp() as server, SmtpPool.from_url(server.url, size=1) as pool:
        assert pool.send_message(message("a@example.org", 7)) == "<7.a@example.org>"
    assert server.message_ids == ["<7.a@example.org>"]


def test_serialise_uses_crlf_and_drops_bcc() -> None:
    msg = message("a@example.org")
    msg["Bcc"] = "hidden@example.org"
    data = serialise(msg)
    assert b"Bcc" not in data
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")


def test_a_refused_address_is_permanent_and_the_connection_carries_on() -> None:
    with MisbehavingSmtp(reject={"gone@example.org"}) as server, SmtpPool.from_url(server.url, size=1) as pool:
        with pytest.raises(SendFailure) as caught:
            pool.send_message(message("gone@example.org"))
        assert caught.value.code == 550 and not caught.value.temporary
        pool.send_message(message("here@example.org"))
        assert pool.opened == 1
    assert server.accepted == {"here@example.org": 1}


def test_temporary_replies_and_drops_are_retryable_and_reconnect() -> None:
    # Every DATA fails one way or another; the classification decides, and the pool keeps working.
    with MisbehavingSmtp(temp_fail_rate=1.0, seed=3) as server, SmtpPool.from_url(server.url, size=1) as pool:
        codes = set()
        for i in range(20):
            with pytest.raises(SendFailure) as caught:
                pool.send_message(message(f"u{i}@example.org"))
            assert caught.value.temporary
            codes.add(caught.value.code)
        assert codes <= {421, 451} and 421 in codes
        assert pool.opened > 1  # a 421 hangs up, so the pool had to connect again
    with MisbehavingSmtp(drop_rate=1.0) as server, SmtpPool.from_url(server.url, size=1) as pool:
        with pytest.raises(SendFailure) as caught:
            pool.send_message(message("x@example.org"))
        assert caught.value.temporary and caught.value.code == 0 and caught.value.maybe_delivered
        server.drop_rate = 0.0
        pool.send_message(message("x@example.org"))
        assert server.accepted == {"x@example.org": 1}


def test_misbehaving_server_with_retries_delivers_every_good_address_once() -> None:
    bad = {f"bad{i}@example.org" for i in range(5)}
    good = [f"good{i}@example.org" for i in range(80)]
    failed: set[str] = set()
    with (
        MisbehavingSmtp(reject=bad, temp_fail_rate=0.3, drop_rate=0.05, seed=11) as server,
        SmtpPool.from_url(server.url, size=2) as pool,
    ):
        pending = [*good, *sorted(bad)]
        for _round in range(50):
            retry = []
            for address in pending:
                try:
                    pool.send_message(message(address))
                except SendFailure as exc:
                    if exc.temporary:
                        retry.append(address)
                    else:
                        failed.add(address)
            pending = retry
            if not pending:
                break
        assert not pending
    assert failed == bad
    assert server.accepted == dict.fromkeys(good, 1)


def test_a_refused_connection_is_temporary() -> None:
    pool = SmtpPool.from_url(f"smtp://127.0.0.1:{free_port()}", size=1, timeout=2)
    with pytest.raises(SendFailure) as caught:
        pool.send_message(message("a@example.org"))
    assert caught.value.temporary and caught.value.code == 0
    # The slot was given back: a second attempt fails the same way rather than hanging.
    with pytest.raises(SendFailure):
        pool.send_message(message("a@example.org"))


def test_an_idle_connection_is_checked_and_replaced_when_the_server_dropped_it() -> None:
    clock = FakeClock()
    with MisbehavingSmtp() as server:
        pool = SmtpPool(connect_url(server.url), size=1, idle_check_seconds=30, clock=clock)
        pool.send_message(message("a@example.org"))
        with pool.connection() as conn:  # the server goes away behind the pool's back
            conn.smtp.sock.shutdown(socket.SHUT_RDWR)
        clock.now += 31
        pool.send_message(message("b@example.org"))
        assert pool.opened == 2
        pool.close()
    assert server.accepted == {"a@example.org": 1, "b@example.org": 1}


def test_connections_roll_over_after_max_per_connection() -> None:
    with MisbehavingSmtp() as server, SmtpPool.from_url(server.url, size=1, max_per_connection=4) as pool:
        for i in range(10):
            pool.send_message(message(f"u{i}@example.org"))
        assert pool.opened == 3


def test_non_ascii_address_uses_smtputf8() -> None:
    with MisbehavingSmtp() as server, SmtpPool.from_url(server.url, size=1) as pool:
        pool.send("news@example.org", ["用户@例子.中国"], serialise(message("x@example.org")))
    assert server.accepted == {"用户@例子.中国": 1}


def test_password_is_never_sent_without_tls_to_a_remote_host() -> None:
    class NoTls:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.closed = False

        def ehlo(self) -> None: ...
        def has_extn(self, name: str) -> bool:
            return False

        def login(self, *args: object) -> None:
            raise AssertionError("login without TLS")

        def close(self) -> None:
            self.closed = True

    original = smtplib.SMTP
    smtplib.SMTP = NoTls  # type: ignore[misc, assignment]
    try:
        with pytest.raises(SendFailure, match="STARTTLS"):
            connect_url("smtp://user:secret@mail.example.org:587")()
    finally:
        smtplib.SMTP = original  # type: ignore[misc]


def test_classify() -> None:
    assert classify(550, b"no").temporary is False
    assert classify(552, "too big").temporary is False
    assert classify(451, "later").temporary is True
    assert classify(421, "bye").temporary is True
    assert classify(0, "lost").temporary is True
    assert classify(354, "odd").temporary is True


def test_token_bucket_spaces_messages_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(21):
        bucket.acquire()
    assert clock.now - start == pytest.approx(2.0)  # the first goes at once, then one every 0.1 s


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5, burst=3, clock=clock, sleep=clock.sleep)
    waits = [bucket.reserve() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.2, 0.4])


def test_token_bucket_without_rate_never_waits() -> None:
    bucket = TokenBucket(rate=0)
    assert all(bucket.acquire() == 0 for _ in range(1000))


def test_pool_rate_is_shared_by_threads() -> None:
    clock = FakeClock()
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            clock.sleep(seconds)

    with MisbehavingSmtp() as server:
        pool = SmtpPool(connect_url(server.url), size=4, rate=100, clock=clock)
        pool.bucket.sleep = sleep
        threads = [
            threading.Thread(
                target=lambda k: [pool.send_message(message(f"t{k}-{i}@example.org")) for i in range(10)], args=(k,)
            )
            for k in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pool.close()
    assert server.total_accepted == 40
    # 40 messages at 100/s: the reservations were spread over 0.39 s of (fake) time, whatever the threads did.
    assert sum(clock.slept) >= 0.39 - 1e-9
