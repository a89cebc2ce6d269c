"""The pools file of `shop serve --pools`: which route prefixes each gunicorn serves, within what machine budget.

Every mistake is one line naming the file and the table, so `shop serve` can print it instead of a traceback.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

POOL_NAME = re.compile(r"[a-z][a-z0-9_-]{0,30}")  # the same rule as SHOP_POOL
PREFIX = re.compile(r"/(?:[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*)?")
HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>\d{1,5})")
RESERVED = ("/static",)  # nginx serves these itself
DEFAULT_LISTEN = "127.0.0.1:8000"
DEFAULT_WORKER_MEMORY_MB = 512

_TABLES = {"server", "budget", "pools"}
_SERVER_KEYS = {"listen"}
_BUDGET_KEYS = {"cores", "memory_mb", "worker_memory_mb"}
_POOL_KEYS = {"prefixes", "min", "max", "backup"}


class PoolsFileError(ValueError):
    """The pools file cannot be used; the message is one line."""


@dataclass(frozen=True, slots=True)
class PoolSpec:
    name: str
    prefixes: tuple[str, ...]
    min_workers: int
    max_workers: int
    backup: str | None = None  # "host:port" or "unix:/path": nginx's `server … backup;`


@dataclass(frozen=True, slots=True)
class MachineBudget:
    """What all pools together may use; the autoscaler moves workers between pools within it."""

    cores: float
    memory_mb: int
    worker_memory_mb: int  # a worker above this is recycled


@dataclass(frozen=True, slots=True)
class PoolsPlan:
    listen: str  # host:port nginx listens on
    budget: MachineBudget
    pools: tuple[PoolSpec, ...]

    @property
    def notes(self) -> list[str]:
        """What a person should know about a valid plan."""
        if any("/" in pool.prefixes for pool in self.pools):
            return []
        return ['no pool owns "/": nginx answers 404 for every path outside the listed prefixes '
                "(the storefront, /healthz and /readyz included)"]

    def pool_for(self, path: str) -> PoolSpec | None:
        """The pool nginx sends `path` to: the longest prefix that matches whole path segments."""
        best: tuple[int, PoolSpec] | None = None
        for pool in self.pools:
            for prefix in pool.prefixes:
                if owns(prefix, path) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), pool)
        return None if best is None else best[1]

    def with_backup(self, backup: str) -> PoolsPlan:
        """Every pool backed by `backup` (`shop serve --backup`), overriding the file."""
        address = check_backup(backup, where="--backup")
        return replace(self, pools=tuple(replace(pool, backup=address) for pool in self.pools))

    def with_listen(self, listen: str) -> PoolsPlan:
        return replace(self, listen=check_listen(listen, where="--host/--port"))


def owns(prefix: str, path: str) -> bool:
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


def check_listen(value: object, *, where: str) -> str:
    if not isinstance(value, str) or not (match := HOST_PORT.fullmatch(value)) \
            or not 1 <= int(match["port"]) <= 65535:
        raise PoolsFileError(f"{where}: listen must be host:port with a port from 1 to 65535, e.g. "
                             f'"127.0.0.1:8000" (got {value!r})')
    return value


def check_backup(value: object, *, where: str) -> str:
    if isinstance(value, str) and value.startswith("unix:/") and len(value) > 6 and " " not in value:
        return value
    if isinstance(value, str) and (match := HOST_PORT.fullmatch(value)) and 1 <= int(match["port"]) <= 65535:
        return value
    raise PoolsFileError(f'{where}: backup must be "host:port" or "unix:/path" (got {value!r})')


def _whole(value: object, *, where: str, key: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PoolsFileError(f"{where}: {key} must be a whole number (got {value!r})")
    if value < least:
        raise PoolsFileError(f"{where}: {key} must be at least {least} (got {value})")
    return value


def _unknown(table: dict[str, Any], known: set[str], *, where: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise PoolsFileError(f"{where}: unknown key {extra[0]!r} (known: {', '.join(sorted(known))})")


def _table(raw: dict[str, Any], name: str, *, where: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise PoolsFileError(f"{where}: {name} must be a table, [{name}]")
    return value


def _pool(name: str, table: object, *, where: str) -> PoolSpec:
    here = f"{where} [pools.{name}]"
    if not POOL_NAME.fullmatch(name):
        raise PoolsFileError(f"{here}: a pool name is lower-case letters, digits, - or _, starting with a letter")
    if not isinstance(table, dict):
        raise PoolsFileError(f"{here}: must be a table")
    _unknown(table, _POOL_KEYS, where=here)
    for key in ("prefixes", "min", "max"):
        if key not in table:
            raise PoolsFileError(f"{here}: {key} is missing")
    prefixes = table["prefixes"]
    if not isinstance(prefixes, list) or not prefixes:
        raise PoolsFileError(f'{here}: prefixes must be a list of paths, e.g. ["/api/v1/products"]')
    cleaned: list[str] = []
    for prefix in prefixes:
        if not isinstance(prefix, str) or not PREFIX.fullmatch(prefix.rstrip("/") or "/"):
            raise PoolsFileError(f"{here}: prefix {prefix!r} must be a path starting with / (letters, digits, "
                                 "- . _ ~ and / only)")
        path = prefix.rstrip("/") or "/"
        if any(owns(reserved, path) for reserved in RESERVED):
            raise PoolsFileError(f"{here}: prefix {prefix!r} overlaps /static/, which nginx serves itself")
        if path in cleaned:
            raise PoolsFileError(f"{here}: prefix {path!r} is listed twice")
        cleaned.append(path)
    least = _whole(table["min"], where=here, key="min", least=1)
    most = _whole(table["max"], where=here, key="max", least=1)
    if least > most:
        raise PoolsFileError(f"{here}: min ({least}) is more than max ({most})")
    backup = check_backup(table["backup"], where=here) if "backup" in table else None
    return PoolSpec(name=name, prefixes=tuple(cleaned), min_workers=least, max_workers=most, backup=backup)


def _budget(table: dict[str, Any], *, where: str) -> MachineBudget:
    here = f"{where} [budget]"
    _unknown(table, _BUDGET_KEYS, where=here)
    cores = table.get("cores", float(os.cpu_count() or 1))
    if isinstance(cores, bool) or not isinstance(cores, int | float) or cores <= 0:
        raise PoolsFileError(f"{here}: cores must be a positive number (got {cores!r})")
    memory = _whole(table.get("memory_mb", _machine_memory_mb()), where=here, key="memory_mb", least=64)
    per_worker = _whole(table.get("worker_memory_mb", DEFAULT_WORKER_MEMORY_MB), where=here,
                        key="worker_memory_mb", least=32)
    if per_worker > memory:
        raise PoolsFileError(f"{here}: worker_memory_mb ({per_worker}) is more than memory_mb ({memory})")
    return MachineBudget(cores=float(cores), memory_mb=memory, worker_memory_mb=per_worker)


def _machine_memory_mb() -> int:
    import psutil  # only when the file leaves the budget to the machine

    return int(psutil.virtual_memory().total // 2**20)


def parse_pools(text: str, *, where: str = "pools file") -> PoolsPlan:
    """A checked plan from the file's text; PoolsFileError (one line) for anything wrong in it."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PoolsFileError(f"{where}: not valid TOML: {exc}") from None
    extra = sorted(set(raw) - _TABLES)
    if extra:
        raise PoolsFileError(f"{where}: unknown table or key {extra[0]!r} (known: [server], [budget], "
                             "[pools.<name>])")
    server = _table(raw, "server", where=where)
    _unknown(server, _SERVER_KEYS, where=f"{where} [server]")
    listen = check_listen(server.get("listen", DEFAULT_LISTEN), where=f"{where} [server]")
    budget = _budget(_table(raw, "budget", where=where), where=where)
    tables = _table(raw, "pools", where=where)
    if not tables:
        raise PoolsFileError(f"{where}: no pools; add at least one [pools.<name>] table with prefixes, min, max")
    pools = tuple(_pool(name, table, where=where) for name, table in tables.items())
    owner: dict[str, str] = {}
    for pool in pools:
        for prefix in pool.prefixes:
            if prefix in owner:
                raise PoolsFileError(f"{where}: prefix {prefix!r} is in both [pools.{owner[prefix]}] and "
                                     f"[pools.{pool.name}]; a prefix belongs to one pool")
            owner[prefix] = pool.name
    least = sum(pool.min_workers for pool in pools)
    if least * budget.worker_memory_mb > budget.memory_mb:
        raise PoolsFileError(f"{where}: the pools' min workers ({least}) need {least * budget.worker_memory_mb} MB "
                             f"at worker_memory_mb, more than the budget's memory_mb ({budget.memory_mb})")
    return PoolsPlan(listen=listen, budget=budget, pools=pools)


def read_pools(path: Path) -> PoolsPlan:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PoolsFileError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    return parse_pools(text, where=str(path))
