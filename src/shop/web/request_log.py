"""The outermost middleware: a request id for every request, the request log's record, the metrics, and the
worker's heartbeat on the process board.

It sits outside CORS, the security headers and the response cache, so a response served from the cache is
counted and logged like any other. Per request it does only what has to happen there — find the client, count
bytes, keep a small body's fields — and hands one record to the writer's queue; formatting and writing happen in
the writer's task. Nothing it does can fail a request: a record that cannot be built is logged and skipped.

Trust: `X-Request-ID`, `X-Forwarded-For` and `X-Forwarded-Proto` are believed only from a peer in
`SHOP_TRUSTED_PROXIES` (loopback by default) or on a Unix socket (nginx in front of the pools). The client is the
right-most forwarded address that is not itself a trusted proxy; a hop that is not an address makes it unknown (see
`TrustedProxies.client_of`). uvicorn's own proxy-header handling is off in the shop's worker
(`shop.runtime.http_worker`), so the peer seen here is the real one and this is the only place that decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import os
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from shop.config import Settings
from shop.services.process_status import WorkerBeat
from shop.services.request_log import RequestLogWriter, RequestRecord
from shop.services.shop import ShopServices
from shop.web import metrics
from shop.web.cache import ASGIApp, Message, Receive, ResponseCache, Scope, Send
from shop.web.client import UNKNOWN
from shop.web.redaction import REDACTED, redact_body, redact_headers, redact_query

log = logging.getLogger(__name__)

BODY_LIMIT = 4096  # bodies up to this size (JSON or form) have their fields kept; larger ones are never buffered
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
_FIELD_BODIES = (b"json", b"x-www-form-urlencoded")
_LEARNED_ROUTES = 4096
# response headers the shop sends on every page, whatever the request: kept once in the code, not in every row
_SAME_EVERY_TIME = frozenset({"content-security-policy", "strict-transport-security", "x-content-type-options",
                              "referrer-policy", "x-frame-options", "permissions-policy",
                              "cross-origin-opener-policy", "cross-origin-resource-policy", "x-request-id"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """Which peers may speak for a client; the verdict per address is remembered (peers are few)."""

    def __init__(self, networks: Iterable[Network | str]) -> None:
        self._networks = [n if not isinstance(n, str) else ipaddress.ip_network(n, strict=False) for n in networks]
        self._verdicts: dict[str, bool] = {}

    def __contains__(self, host: str) -> bool:
        verdict = self._verdicts.get(host)
        if verdict is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                return False
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
            verdict = any(address in network for network in self._networks)
            if len(self._verdicts) < 4096:
                self._verdicts[host] = verdict
        return verdict

    def client_of(self, forwarded: str) -> str:
        """The client a trusted peer's X-Forwarded-For names: the right-most address that is not a trusted proxy
        (the left-most when all are).

        Each hop is an IP address, optionally with a port (`203.0.113.9:4711`, `[2001:db8::1]:80`); it is
        returned in its canonical spelling, so one client is one key however it is written. A hop that has to be
        read and is not an address — garbage, an empty hop, `unknown`, an IPv6 address with a zone (which names
        an interface of the proxy's host, not a client) — makes the client UNKNOWN: never the peer, which is
        trusted and would then vouch for itself (and open /metrics). Hops left of the client are never read."""
        client = UNKNOWN
        for hop in reversed(forwarded.split(",")):
            address = _address(hop)
            if address is None:
                return UNKNOWN
            client = address
            if address not in self:
                break
        return client


_BRACKETED = re.compile(r"\[([0-9A-Fa-f:.]+)\](?::([0-9]{1,5}))?")  # [2001:db8::1] or [2001:db8::1]:80
_WITH_PORT = re.compile(r"([0-9.]+):([0-9]{1,5})")  # 203.0.113.9:4711
_addresses: dict[str, str | None] = {}  # hop as sent → its canonical address (None: not one); clients repeat


def _address(hop: str) -> str | None:
    """The canonical address a forwarded hop names, or None when it names none."""
    known = _addresses.get(hop, False)
    if known is False:
        known = _canonical(hop.strip(" \t"))
        if len(hop) <= 64:
            if len(_addresses) >= 4096:
                _addresses.clear()
            _addresses[hop] = known
    return known  # type: ignore[return-value]


def _canonical(text: str) -> str | None:
    version = port = None
    if match := _BRACKETED.fullmatch(text):
        text, port, version = match[1], match[2], 6
    elif match := _WITH_PORT.fullmatch(text):
        text, port, version = match[1], match[2], 4
    if port is not None and int(port) > 65535:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if version is not None and address.version != version:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return None  # fe80::1%eth0: an interface of the proxy's own host
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
    return str(address)


class RequestLogMiddleware:
    """See the module's docstring. `served` and `in_flight` feed the heartbeat."""

    def __init__(self, app: ASGIApp, *, writer: RequestLogWriter | None, trusted: TrustedProxies, pool: str,
                 count: bool = True) -> None:
        self.app = app
        self.writer = writer
        self.trusted = trusted
        self.pool = pool
        self.count = count  # Prometheus figures on or off
        self.served = 0
        self.in_flight = 0
        self._pid = os.getpid()
        self._prefix = os.urandom(5).hex()  # keeps the ids of concurrent workers apart
        self._sequence = itertools.count()
        self._routes: dict[str, str] = {}  # GET path → route template, for cache hits that never reach a route

    def new_id(self, now: float) -> str:
        """32 hex characters, ordered by time: milliseconds, this worker's prefix, a sequence number."""
        return f"{int(now * 1000):012x}{self._prefix}{next(self._sequence) & 0xFF_FFFF_FFFF:010x}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        arrived = time.time()
        self.in_flight += 1  # the heartbeat reports it, to the process board and the metrics
        sent_id = forwarded = proto = user_agent = None
        content_type = b""
        content_length = -1
        has_body = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                sent_id = value
            elif name == b"x-forwarded-for":
                forwarded = value if forwarded is None else forwarded + b"," + value
            elif name == b"x-forwarded-proto":
                proto = value
            elif name == b"content-type":
                content_type = value
            elif name == b"content-length":
                has_body = value != b"0"
                content_length = int(value) if value.isdigit() else -1
            elif name == b"transfer-encoding":
                has_body = True
            elif name == b"user-agent" and user_agent is None:
                user_agent = value
        peer = scope.get("client")
        client_ip = peer[0] if peer and peer[0] else None  # None: a Unix socket
        peer_trusted = client_ip is None or client_ip in self.trusted
        if peer_trusted:
            if forwarded is not None:
                client_ip = self.trusted.client_of(forwarded.decode("latin-1"))
            if proto is not None:  # https at the proxy: HSTS and secure cookies (the request is http from there)
                scheme = proto.strip().lower()
                if scheme in (b"http", b"https"):
                    scope["scheme"] = scheme.decode()
        request_id = sent_id.decode() if peer_trusted and sent_id and _REQUEST_ID.match(sent_id) \
            else self.new_id(arrived)
        # this request's own copy: a server may hand every request the same lifespan state dict
        state = scope["state"] = {**scope["state"]} if "state" in scope else {}
        state["request_id"] = request_id
        state["client_ip"] = client_ip
        state["client_trusted"] = client_ip is None or client_ip in self.trusted
        path = scope["path"]

        bytes_in = 0
        chunks: list[bytes] | None = None
        if has_body and self.writer is not None and content_length <= BODY_LIMIT \
                and any(kind in content_type for kind in _FIELD_BODIES):
            chunks = []
        inner_receive = receive
        if has_body:
            async def counted() -> Message:
                nonlocal bytes_in, chunks
                message = await receive()
                body = message.get("body", b"")
                bytes_in += len(body)
                if chunks is not None:
                    if bytes_in <= BODY_LIMIT:
                        chunks.append(body)
                    else:
                        chunks = None  # too big after all (no Content-Length): keep nothing rather than buffer
                return message

            inner_receive = counted

        status = 0
        bytes_out = 0
        response_headers: list[tuple[bytes, bytes]] = []  # as the app sent them (the id is not logged as one)
        id_header = (b"x-request-id", request_id.encode())

        async def answered(message: Message) -> None:
            nonlocal status, bytes_out, response_headers
            if message["type"] == "http.response.body":
                bytes_out += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                status = message["status"]
                response_headers = message.get("headers", [])
                # a new list: the response cache sends the same header list for every hit
                message = {**message, "headers": [*response_headers, id_header]}
            await send(message)

        try:
            await self.app(scope, inner_receive, answered)
        finally:
            seconds = time.perf_counter() - started
            self.in_flight -= 1
            self.served += 1
            route = self._route(scope, path)
            status = status or 500  # the app failed before it answered
            if self.count:
                metrics.observe(scope["method"], route, status, seconds)
            if self.writer is not None:
                try:
                    record = RequestRecord(
                        id=request_id, at=datetime.fromtimestamp(arrived, UTC), method=scope["method"],
                        path=path if path.isprintable() else _printable(path),
                        route=route, query=_query(scope["query_string"]),
                        status=status, duration_ms=round(seconds * 1000, 3), bytes_in=bytes_in, bytes_out=bytes_out,
                        client_ip=client_ip,
                        user_agent=None if user_agent is None else _printable(user_agent.decode("latin-1")),
                        user_id=state.get("user_id"), worker_pid=self._pid, pool=self.pool,
                        details=_details(scope["headers"], response_headers, content_type, has_body, chunks,
                                         bytes_in))
                except Exception:  # the request is answered; its record is not worth a failure
                    log.exception("request log: could not build the record of %s %s", scope["method"], path)
                else:
                    if not self.writer.submit(record) and self.count:
                        metrics.LOG_DROPPED.inc()

    def _route(self, scope: Scope, path: str) -> str | None:
        route = scope.get("route")
        if route is None:
            return self._routes.get(path) if scope["method"] in ("GET", "HEAD") else None
        template: str | None = getattr(route, "path_format", None) or getattr(route, "path", None)
        if template and scope["method"] == "GET" and path not in self._routes:
            if len(self._routes) >= _LEARNED_ROUTES:
                self._routes.clear()
            self._routes[path] = template
        return template


_queries: dict[bytes, str | None] = {}  # raw query string → as logged; a shop's reads repeat a few thousand


def _printable(text: str) -> str:
    """Control characters written out (`\\x00`): a request the input policy refused for a NUL in its path is
    still logged, and PostgreSQL stores no NUL in text."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                   for c in text)


def _query(raw: bytes) -> str | None:
    """The query string as logged (secrets redacted), decided once per distinct string."""
    known = _queries.get(raw, False)
    if known is False:
        known = _printable(redact_query(raw.decode("latin-1"))) or None
        if len(raw) <= 512:
            if len(_queries) >= 4096:
                _queries.clear()
            _queries[raw] = known
    return known  # type: ignore[return-value]


class _Redacted:
    """Header lists as logged, remembered by their content: most requests of a client and most responses of a
    route carry the same headers (a response cache hit sends the very same list), and a remembered answer costs a
    tenth of redacting again. A list with a secret in it (a cookie, a token) is never kept, so no secret outlives
    its request here. The dicts handed out are shared by many records, which only ever read them."""

    def __init__(self, *, leave_out: frozenset[str] = frozenset(), size: int = 1024) -> None:
        self._leave_out = leave_out
        self._size = size
        self._known: dict[tuple[tuple[bytes, bytes], ...], dict[str, str]] = {}

    def __call__(self, headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
        key = tuple(headers)
        known = self._known.get(key)
        if known is None:
            known = redact_headers(key, leave_out=self._leave_out)
            if not any(REDACTED in value for value in known.values()):
                if len(self._known) >= self._size:
                    self._known.clear()
                self._known[key] = known
        return known


_request_headers = _Redacted()
_response_headers = _Redacted(leave_out=_SAME_EVERY_TIME)


def _details(request_headers: Iterable[tuple[bytes, bytes]], response_headers: Iterable[tuple[bytes, bytes]],
             content_type: bytes, has_body: bool, chunks: list[bytes] | None, size: int) -> dict[str, Any]:
    details: dict[str, Any] = {"request_headers": _request_headers(request_headers),
                               "response_headers": _response_headers(response_headers)}
    if chunks is not None and size:
        details["body"] = redact_body(content_type.decode("latin-1"), b"".join(chunks))
    elif has_body and size:
        kind = content_type.split(b";", 1)[0].decode("latin-1") or "no content type"
        details["body"] = f"[not kept: {kind}, {size} bytes]"
    return details


class Telemetry:
    """The worker's side tasks, run for the app's lifetime: the request log's writer and the heartbeat."""

    def __init__(self, *, services: ShopServices, settings: Settings, middleware: RequestLogMiddleware,
                 every: float = 2.0, cache: ResponseCache | None = None) -> None:
        self._services = services
        self._middleware = middleware
        self._cache = cache
        self._pool = settings.pool
        self._count = settings.metrics
        self._every = every
        self._pid = os.getpid()
        self._started_at = datetime.now(UTC)
        self._tasks: list[asyncio.Task[None]] = []
        self._beat_failed = False

    def start(self) -> None:
        writer = self._services.request_log
        if writer is not None:
            self._tasks.append(asyncio.create_task(writer.run(), name="request-log"))
        self._tasks.append(asyncio.create_task(self._beat_forever(), name="heartbeat"))

    async def _beat_forever(self) -> None:
        while True:
            self.beat()
            await asyncio.sleep(self._every)

    def beat(self) -> None:
        """Post this worker's figures to the process board (and its pool and queue figures to the metrics)."""
        middleware = self._middleware
        try:
            self._services.processes.beat(WorkerBeat(
                pid=self._pid, pool=self._pool, started_at=self._started_at, updated_at=datetime.now(UTC),
                requests=middleware.served, in_flight=middleware.in_flight))
            self._beat_failed = False
        except OSError as exc:
            if not self._beat_failed:  # once per outage, not every two seconds
                log.warning("heartbeat: cannot post to the process board (%s)", exc)
            self._beat_failed = True
        if self._count:
            # a gauge set per beat, not moved per request: two shared-memory writes fewer on every request
            metrics.IN_FLIGHT.set(middleware.in_flight)
            try:
                metrics.report_pools(self._services.db_pools())
            except Exception as exc:  # the heartbeat must go on
                log.warning("metrics: cannot read the connection pools (%s)", type(exc).__name__)
            if self._services.request_log is not None:
                metrics.LOG_WAITING.set(self._services.request_log.waiting)
            if self._cache is not None:
                metrics.report_cache(self._cache)

    async def stop(self, *, within: float = 8.0) -> None:
        """Stop beating, flush the request log (bounded) and leave the process board."""
        writer = self._services.request_log
        for task in self._tasks:
            if task.get_name() == "heartbeat":
                task.cancel()
        if writer is not None:
            writer.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=within)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        if self._count:
            metrics.flush()
        with contextlib.suppress(OSError):
            self._services.processes.forget_worker(self._pid)
