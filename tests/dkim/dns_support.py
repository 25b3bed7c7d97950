"""An authoritative DNS server on loopback for tests: dnslib serving a zone given as text, on a free UDP port.

with ZoneServer(zone_text) as server:        # 127.0.0.1, a free port
    server.lookup("_dmarc.example.org")      # TXT strings joined per record, through dnspython
    dkimpy.verify(data, dnsfunc=server.dkim_dnsfunc)
"""

from __future__ import annotations

import socket
from types import TracebackType

from dnslib.server import DNSLogger, DNSServer
from dnslib.zoneresolver import ZoneResolver

from feedsvc.mail.dns_records import resolver

__all__ = ["ZoneServer"]


class ZoneServer:
    """dnslib's server answering from `zone` (zone-file lines, comments allowed); `serve` replaces the zone."""

    def __init__(self, zone: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.zone = zone
        self._resolver = ZoneResolver(zone)
        quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False, logf=lambda _s: None)
        self._server = DNSServer(self, port=self.port, address="127.0.0.1", logger=quiet)
        self.lookup = resolver("127.0.0.1", self.port, timeout=3.0)

    def resolve(self, request: object, handler: object) -> object:
        return self._resolver.resolve(request, handler)

    def serve(self, zone: str) -> None:
        """Answer from `zone` from now on."""
        self.zone = zone
        self._resolver = ZoneResolver(zone)

    def dkim_dnsfunc(self, name: bytes, timeout: int = 5) -> bytes | None:
        """dkimpy's `dnsfunc`: the first TXT record at `name`, as bytes, looked up over the wire."""
        found = self.lookup(name.decode("ascii"))
        return found[0].encode("utf-8") if found else None

    def __enter__(self) -> ZoneServer:
        self._server.start_thread()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.stop()
        self._server.server.server_close()
