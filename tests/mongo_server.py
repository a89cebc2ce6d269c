"""MongoDB for the users-store tests, and fresh databases on it.

SHOP_TEST_MONGODB_URL names a real server (mongod) to use, e.g. mongodb://127.0.0.1:27017/admin. Without it the
tests start nx-27017 on 127.0.0.1: a MongoDB wire-protocol server over SQLite (PyPI, MIT, pure Python, in the dev
extras), which runs offline. It is an EMULATOR, not mongod: it answers PyMongo's async client for what the users
store uses (hello, insert, find, findAndModify, update, delete, createIndexes, a unique index refusing a second key
as DuplicateKeyError 11000), and runs each database's commands one at a time, so its races prove less than a real
server's. Its tests run as `[mongodb-emulator]`; with a real server they run as `[mongodb]`.

One defect of the emulator is worked around here, and only this one: neosqlite (its storage) has a fast SQL path
for updates that binds a `$set` datetime as text ('2026-11-26 12:00:00'), so the date comes back a string. The
emulator is started with updates carrying a datetime sent down neosqlite's own Python update path, which stores a
BSON date. Without that, the users store's contract tests fail on the emulator (a used code's `used_at`, a verified
phone's `phone_verified_at` come back as strings) — on mongod they pass as they are.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl

ENV = "SHOP_TEST_MONGODB_URL"


def real_url() -> str | None:
    return os.environ.get(ENV, "").strip() or None


def emulator_installed() -> bool:
    return importlib.util.find_spec("nx_27017") is not None


def param_id() -> str:
    """How tests on MongoDB are named: they say whether a real server or the emulator ran them."""
    return "mongodb" if real_url() else "mongodb-emulator"


def describe() -> str:
    if real_url():
        return f"a real server at {ENV}"
    if emulator_installed():
        return f"nx-27017 {importlib.metadata.version('nx-27017')}, an emulator over SQLite, not mongod; set {ENV} " \
               "to test a real mongod"
    return f"no server: set {ENV} to a mongod, or install nx-27017 (the dev extras) for the emulator"


def _split(url: str) -> tuple[str, str, str, str]:
    """scheme, netloc (with credentials), database, query."""
    scheme, _, rest = url.partition("://")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    path, _, query = rest[end:].partition("?")
    return scheme, rest[:end], path.lstrip("/"), query


def _first_host(url: str) -> tuple[str, int]:
    host = _split(url)[1].rpartition("@")[2].split(",")[0]
    if host.startswith("["):
        name, _, port = host[1:].partition("]:")
        return name, int(port or 27017)
    name, _, port = host.partition(":")
    return name, int(port or 27017)


def available() -> bool:
    """A real server named by SHOP_TEST_MONGODB_URL answers, or (without it) the emulator is installed."""
    url = real_url()
    if url is None:
        return emulator_installed()
    if url.startswith("mongodb+srv://"):
        return True  # a DNS name: the tests will say whether it answers
    try:
        with socket.create_connection(_first_host(url), timeout=1):
            return True
    except OSError:
        return False


class MongoServer:
    """A MongoDB server for one test session; `url()` names a new database on it, dropped at the end."""

    def __init__(self, url: str, kind: str) -> None:
        self.kind = kind
        self._scheme, self._netloc, database, query = _split(url)
        options = dict(parse_qsl(query, keep_blank_values=True))
        if "@" in self._netloc and "authsource" not in {k.lower() for k in options}:
            options["authSource"] = database or "admin"  # the credentials still belong where they were
        self._query = "&".join(f"{k}={v}" for k, v in options.items())
        self._run = uuid.uuid4().hex[:6]
        self._created: list[str] = []

    def url(self, label: str) -> str:
        name = f"shop_t_{self._run}_{label}_{len(self._created)}"
        self._created.append(name)
        return f"{self._scheme}://{self._netloc}/{name}" + (f"?{self._query}" if self._query else "")

    def drop_all(self) -> None:
        from pymongo import MongoClient

        if not self._created:
            return
        client: MongoClient[dict[str, object]] = MongoClient(self.url("admin"), serverSelectionTimeoutMS=5000)
        try:
            for name in self._created:
                client.drop_database(name)
        finally:
            client.close()
        self._created.clear()


# neosqlite 1.17's SQL-tier `$set` binds a datetime as text; its Python tier keeps a BSON date (see the docstring)
_LAUNCH_EMULATOR = """
import datetime, sys
from neosqlite.collection.query_helper._sql_updates import SqlUpdatesMixin
from nx_27017.nx_27017 import main

sql_tier = SqlUpdatesMixin._can_use_sql_updates

def _can_use_sql_updates(self, update_spec, doc_id, original_doc=None):
    if any(isinstance(value, datetime.datetime) for spec in update_spec.values() if isinstance(spec, dict)
           for value in spec.values()):
        return False
    return sql_tier(self, update_spec, doc_id, original_doc)

SqlUpdatesMixin._can_use_sql_updates = _can_use_sql_updates
sys.argv[0] = "nx-27017"
main()
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _emulator(tmp: Path) -> Iterator[str]:
    """nx-27017 on a free port of 127.0.0.1, one SQLite file per database under `tmp`, until the block ends."""
    port = _free_port()
    (tmp / "data").mkdir(parents=True, exist_ok=True)
    log_path = tmp / "nx-27017.log"  # it logs every command: a file, never a pipe nobody reads
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH_EMULATOR, "--data-dir", str(tmp / "data"), "--host", "127.0.0.1",
             "-p", str(port)], cwd=tmp, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"nx-27017 exited with {server.returncode}: "
                                       f"{log_path.read_text(errors='replace')[-2000:]}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"nx-27017 did not listen on 127.0.0.1:{port} within 30 s") from None
                    time.sleep(0.1)
            yield f"mongodb://127.0.0.1:{port}/"
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


@contextmanager
def mongo_server(tmp: Path) -> Iterator[MongoServer]:
    """The real server named by SHOP_TEST_MONGODB_URL, or else the emulator, started here."""
    url = real_url()
    if url is not None:
        server = MongoServer(url, kind="mongod")
        try:
            yield server
        finally:
            server.drop_all()
        return
    if not emulator_installed():
        raise RuntimeError(describe())
    with _emulator(tmp) as emulated:
        yield MongoServer(emulated, kind="nx-27017 emulator")
