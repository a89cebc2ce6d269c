"""Private PostgreSQL and MariaDB servers for the tests that stop, start and cut them.

The shared servers on 5432 and 3306 serve every other test; a test that takes its database away gets one of its
own, made from the same Debian binaries in a temporary folder, on a free port, with no password. As root, the
PostgreSQL one runs as the `postgres` user (initdb refuses root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found under /usr/lib/postgresql: apt-get install postgresql")
    return str(found[-1])


def missing_binaries(kinds: tuple[str, ...] = ("postgresql", "mariadb")) -> list[str]:
    """The Debian packages whose server binaries a private server of these kinds would need and does not find."""
    missing = []
    if "postgresql" in kinds and not sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        missing.append("postgresql")
    if "mariadb" in kinds and not (shutil.which("mariadb-install-db") and Path("/usr/sbin/mariadbd").exists()):
        missing.append("mariadb-server")
    return missing


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _wait(condition: object, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {seconds:.0f} s")
        time.sleep(0.1)


@dataclass
class PrivateServer:
    kind: str  # "postgresql" or "mariadb"
    home: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.kind == "postgresql":
            return f"postgresql://postgres@127.0.0.1:{self.port}/shop"
        return f"mysql://root@127.0.0.1:{self.port}/shop"

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if self.kind == "postgresql" and os.geteuid() == 0 \
            else argv

    def create(self) -> None:
        missing = missing_binaries((self.kind,))
        if missing:
            raise RuntimeError(f"no {self.kind} server binaries here: apt-get install {' '.join(missing)}")
        data = self.home / "data"
        if self.kind == "postgresql":
            data.mkdir()
            if os.geteuid() == 0:
                shutil.chown(data, "postgres")
            subprocess.run(self._as_owner([_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                           "--no-sync", "-E", "UTF8"]), check=True, capture_output=True)
        else:
            subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                            "--auth-root-authentication-method=normal", "--skip-test-db"],
                           check=True, capture_output=True)
        self.start()
        self.sql("CREATE DATABASE shop")

    def start(self) -> None:
        data = self.home / "data"
        if self.kind == "postgresql":
            subprocess.run(self._as_owner([
                _pg_bin("pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w", "start", "-o",
                f"-p {self.port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"]),
                check=True, capture_output=True)
        else:
            with (self.home / "server.log").open("ab") as log:
                self.process = subprocess.Popen(
                    ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}", f"--port={self.port}",
                     "--bind-address=127.0.0.1", f"--socket={self.home / 'sock'}", "--user=root",
                     f"--pid-file={self.home / 'pid'}", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
                     "--max-connections=200", "--innodb-flush-log-at-trx-commit=2"],
                    stdout=log, stderr=log, start_new_session=True)
        _wait(lambda: _answers(self.port), f"{self.kind} did not start on port {self.port}")

    def stop(self) -> None:
        """A fast stop: open connections are cut, as an operator's restart would."""
        if self.kind == "postgresql":
            subprocess.run(self._as_owner([_pg_bin("pg_ctl"), "-D", str(self.home / "data"), "-m", "fast", "-w",
                                           "stop"]), check=True, capture_output=True)
        elif self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
            self.process = None
        _wait(lambda: not _answers(self.port), f"{self.kind} did not stop")

    def cut_connections(self) -> int:
        """Kill every client connection but our own, as pg_terminate_backend / KILL do."""
        if self.kind == "postgresql":
            out = self.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = 'shop' AND pid <> pg_backend_pid()")
            return int(out or 0)
        ids = self.sql("SELECT id FROM information_schema.processlist WHERE db = 'shop' AND id <> CONNECTION_ID()")
        killed = 0
        for line in ids.split():
            with contextlib.suppress(subprocess.CalledProcessError):  # it may have gone meanwhile
                self.sql(f"KILL CONNECTION {int(line)}")
                killed += 1
        return killed

    def sql(self, statement: str) -> str:
        if self.kind == "postgresql":
            argv = ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-tA",
                    "-c", statement]
        else:
            argv = ["mariadb", "-h", "127.0.0.1", "-P", str(self.port), "-u", "root", "-N", "-B", "-e", statement]
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            if _answers(self.port):
                self.stop()
        if self.process is not None:
            self.process.kill()
        shutil.rmtree(self.home, ignore_errors=True)


@contextlib.contextmanager
def private_server(kind: str) -> Iterator[PrivateServer]:
    home = Path(tempfile.mkdtemp(prefix=f"shop-{kind}-", dir="/tmp"))
    home.chmod(0o755)  # the postgres user reaches its data folder through it
    server = PrivateServer(kind, home)
    try:
        server.create()
        yield server
    finally:
        server.destroy()
