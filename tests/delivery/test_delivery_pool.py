"""The transport pool against real loopback servers: reuse, classification, reconnects, the global rate."""

from __future__ import annotations

import threading
from email.message import EmailMessage

import pytest
from smtp_misbehaving import MisbehavingSmtp, free_port

from feedsvc.mail.pool import TokenBucket, TransportPool
from feedsvc.mail.transport import PermanentFailure, SmtpTransport, TemporaryFailure, TransportFailure, prepare


def message(to: str, n: int = 0) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "周报 <news@example.org>"
    msg["To"] = to
    msg["Subject"] = f"第 {n} 期"
    msg["Message-ID"] = f"<{n}.{to}>"
    msg.set_content("正文\n.leading dot survives\n")
    return msg


def smtp_pool(url: str, size: int, rate: float = 0.0, **kwargs: object) -> TransportPool:
    return TransportPool(lambda: SmtpTransport(url), size=size, rate=rate, **kwargs)  # type: ignore[arg-type]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)
            self.now += seconds


def send_all(pool: TransportPool, addresses: list[str], threads: int) -> None:
    def work(part: list[str]) -> None:
        for address in part:
            pool.send(*prepare(message(address)))

    workers = [threading.Thread(target=work, args=(addresses[k::threads],)) for k in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()


def test_a_sink_gets_every_message_once_over_few_connections() -> None:
    addresses = [f"user{i}@example.org" for i in range(60)]
    with MisbehavingSmtp() as server, smtp_pool(server.url, size=3) as pool:
        send_all(pool, addresses, threads=3)
        assert pool.connections_opened <= 3
    assert server.accepted == dict.fromkeys(addresses, 1)
    assert sorted(server.message_ids) == sorted(f"<0.{a}>" for a in addresses)


def test_more_threads_than_transports_wait_for_one() -> None:
    addresses = [f"user{i}@example.org" for i in range(40)]
    with MisbehavingSmtp() as server, smtp_pool(server.url, size=2) as pool:
        send_all(pool, addresses, threads=6)
        assert pool.connections_opened == 2
    assert server.total_accepted == 40


def test_a_refused_address_is_permanent_and_the_connection_carries_on() -> None:
    with MisbehavingSmtp(reject={"gone@example.org"}) as server, smtp_pool(server.url, size=1) as pool:
        with pytest.raises(PermanentFailure) as caught:
            pool.send(*prepare(message("gone@example.org")))
        assert caught.value.code == 550
        pool.send(*prepare(message("here@example.org")))
        assert pool.connections_opened == 1
    assert server.accepted == {"here@example.org": 1}


def test_temporary_replies_and_drops_are_retryable_and_reconnect() -> None:
    with MisbehavingSmtp(temp_fail_rate=1.0, seed=3) as server, smtp_pool(server.url, size=1) as pool:
        codes = set()
        for i in range(20):
            with pytest.raises(TemporaryFailure) as caught:
                pool.send(*prepare(message(f"u{i}@example.org")))
            codes.add(caught.value.code)
        assert codes == {421, 451}
        assert pool.connections_opened > 1  # after a temporary failure the next message reconnects
    with MisbehavingSmtp(drop_rate=1.0) as server, smtp_pool(server.url, size=1) as pool:
        with pytest.raises(TemporaryFailure) as caught:
            pool.send(*prepare(message("x@example.org")))
        assert caught.value.code == 0 and caught.value.maybe_delivered
        server.drop_rate = 0.0
        pool.send(*prepare(message("x@example.org")))
    assert server.accepted == {"x@example.org": 1}


def test_misbehaving_server_with_retries_delivers_every_good_address_once() -> None:
    bad = {f"bad{i}@example.org" for i in range(5)}
    good = [f"good{i}@example.org" for i in range(80)]
    failed: set[str] = set()
    with MisbehavingSmtp(reject=bad, temp_fail_rate=0.3, drop_rate=0.05, seed=11) as server:
        with smtp_pool(server.url, size=2) as pool:
            pending = [*good, *sorted(bad)]
            for _round in range(50):
                retry = []
                for address in pending:
                    try:
                        pool.send(*prepare(message(address)))
                    except TransportFailure as exc:
                        (retry.append(address) if exc.temporary else failed.add(address))
                pending = retry
                if not pending:
                    break
            assert not pending
        assert server.dropped > 0 and sum(server.temporary.values()) > 0  # it really misbehaved
    assert failed == bad
    assert server.accepted == dict.fromkeys(good, 1)


def test_a_refused_connection_is_temporary_and_frees_the_slot() -> None:
    with smtp_pool(f"smtp://127.0.0.1:{free_port()}?timeout=2", size=1) as pool:
        for _ in range(2):  # the second attempt fails the same way rather than waiting for a slot
            with pytest.raises(TemporaryFailure) as caught:
                pool.send(*prepare(message("a@example.org")))
            assert caught.value.code == 0


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


def test_pool_rate_is_global_across_threads() -> None:
    clock = FakeClock()
    with MisbehavingSmtp() as server:
        with smtp_pool(server.url, size=4, rate=100, clock=clock, sleep=clock.sleep) as pool:
            send_all(pool, [f"t{i}@example.org" for i in range(40)], threads=4)
        assert server.total_accepted == 40
    # 40 messages at 100/s: whatever the threads did, the reservations span 0.39 s of (fake) time.
    assert clock.now - 1000.0 >= 0.39 - 1e-9
