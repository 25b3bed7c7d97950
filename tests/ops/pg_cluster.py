"""A private PostgreSQL cluster for fault tests: initdb, start, stop and start again, on its own port.

The shared server on 5432 is never touched. The cluster runs as the `postgres` system user (initdb refuses
root), so its data folder is a fresh folder in the system temporary directory owned by that user, not
pytest's tmp_path (which is private to root): `PrivateCluster.remove` deletes it.

    cluster = PrivateCluster.create()
    cluster.start(); url = cluster.url        # postgresql+psycopg://postgres@127.0.0.1:24xxx/postgres
    cluster.stop(); cluster.start()           # a restart, as an upgrade would do
    cluster.remove()
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from support import require

PORTS = range(24100, 24999)


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL server binaries folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def free_port_in_range() -> int:
    """A port of this helper's range that nothing listens on (tried in a per-process order)."""
    start = os.getpid() % len(PORTS)
    for offset in range(len(PORTS)):
        port = PORTS[(start + offset) % len(PORTS)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


@dataclass
class PrivateCluster:
    """A PostgreSQL cluster of its own: data and socket folders, a port, pg_ctl as the postgres user."""

    bin_dir: Path
    home: Path
    port: int

    @classmethod
    def create(cls) -> PrivateCluster:
        """initdb a new cluster (skips locally, fails in CI, without the server binaries or the postgres user)."""
        bin_dir = postgres_bin()
        require(bin_dir is not None and shutil.which("runuser") is not None, "PostgreSQL server binaries, runuser")
        assert bin_dir is not None
        home = Path(tempfile.mkdtemp(prefix="feedsvc-faults-pg-"))
        shutil.chown(home, "postgres", "postgres")
        cluster = cls(bin_dir, home, free_port_in_range())
        cluster._as_postgres(
            "initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        (cluster.home / "socket").mkdir()
        shutil.chown(cluster.home / "socket", "postgres", "postgres")
        return cluster

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def url(self) -> str:
        """The URL feedsvc takes (psycopg 3, TCP on loopback, user postgres, database postgres)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, tool: str, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin_dir / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.home,
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.home / 'socket'} -c fsync=off"
        self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.home / "server.log"), "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: active connections are cut, as a restart for an upgrade does)."""
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        """Stop the server if it runs, and delete its folder."""
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)
