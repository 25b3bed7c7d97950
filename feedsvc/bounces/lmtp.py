"""An LMTP receiver (or SMTP, for an MTA that cannot speak LMTP) for a self-hosted MTA's transport map: the bounce
domain's mail comes here. No Flask, no database (the `Take` callable records).

- Each recipient is taken in on its own (its VERP address names one outbox row) and answered on its own, as LMTP
  asks: ``250`` only once it is recorded, ``451 4.3.0`` when recording failed (the MTA keeps the message and tries
  again, so a report is never lost). Mail that is no report (a letter to the bounce address) is accepted and
  logged: refusing it would only make the MTA bounce a bounce.
- Over SMTP there is one answer for the message: 250 when every recipient was recorded, else 451.
- A message over FEEDSVC_BOUNCE_MAX_BYTES is refused with 552 (SIZE is announced, so an MTA refuses it before
  sending it; one that sends it anyway gets 552 at the end of DATA).
- Bound to loopback unless told otherwise: anyone who can reach the port can hand in reports.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

__all__ = ["Receiver", "Take", "serve"]

log = logging.getLogger(__name__)

Take = Callable[[bytes, Sequence[str]], bool]  # (raw, envelope recipients) -> recognised; raising: not recorded
ACCEPTED = "250 2.0.0 recorded"
NOT_RECORDED = "451 4.3.0 not recorded, try again later"
# Mail that is no report is refused, so the MTA returns it to its sender instead of it vanishing here.
NOT_A_REPORT = "550 5.6.0 not a delivery or feedback report: this address takes only bounces and complaints"


@dataclass
class Receiver:
    """The aiosmtpd handler: every DATA is taken in (in a thread, so other sessions go on) before it is answered."""

    take: Take
    lmtp: bool = True

    async def handle_RCPT(self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or b"")
        loop = asyncio.get_running_loop()
        recipients = list(envelope.rcpt_tos)
        if not self.lmtp:
            return await loop.run_in_executor(None, self._answer, raw, recipients)
        answers = [await loop.run_in_executor(None, self._answer, raw, [rcpt]) for rcpt in recipients]
        return "\r\n".join(answers)

    def _answer(self, raw: bytes, recipients: Sequence[str]) -> str:
        try:
            handled = self.take(raw, recipients)
        except Exception:
            log.exception("a report for %s could not be recorded: answered 451", ", ".join(recipients))
            return NOT_RECORDED
        if not handled:
            log.info("mail for %s is not a report: refused (550), the MTA returns it", ", ".join(recipients))
            return NOT_A_REPORT
        return ACCEPTED


def server_factory(take: Take, *, lmtp: bool, max_bytes: int, hostname: str = "feedsvc") -> Callable[[], SMTP]:
    """What asyncio's create_server calls for every connection."""
    kind = LMTP if lmtp else SMTP
    handler = Receiver(take, lmtp=lmtp)

    def factory() -> SMTP:
        return kind(handler, data_size_limit=max_bytes, hostname=hostname, ident="feedsvc bounces")

    return factory


def serve(
    take: Take,
    *,
    host: str,
    port: int,
    lmtp: bool = True,
    max_bytes: int,
    ready: Callable[[str, int], None] | None = None,
) -> None:
    """Listen until SIGTERM or SIGINT; `ready(host, port)` is called once the socket is bound."""
    asyncio.run(_serve(take, host=host, port=port, lmtp=lmtp, max_bytes=max_bytes, ready=ready))


async def _serve(
    take: Take, *, host: str, port: int, lmtp: bool, max_bytes: int, ready: Callable[[str, int], None] | None
) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(server_factory(take, lmtp=lmtp, max_bytes=max_bytes), host=host, port=port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    if ready is not None:
        ready(bound_host, bound_port)
    async with server:
        await stop.wait()
        server.close()
        await server.wait_closed()
