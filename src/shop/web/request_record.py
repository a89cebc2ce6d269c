"""A request's record in the request log: its body counted (and a small JSON or form body's fields kept), its
headers, query and body redacted, one `RequestRecord` handed to the writer's queue.

Formatting and writing happen in the writer's task, never here. Nothing here can fail a request: a record that
cannot be built is logged and skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from shop.services.request_log import RequestLogWriter, RequestRecord
from shop.web.cache import Message, Receive, Scope, Send
from shop.web.redaction import REDACTED, redact_body, redact_headers, redact_query
from shop.web.request_context import RequestContext

log = logging.getLogger(__name__)

BODY_LIMIT = 4096  # bodies up to this size (JSON or form) have their fields kept; larger ones are never buffered
_FIELD_BODIES = (b"json", b"x-www-form-urlencoded")
# response headers the shop sends on every page, whatever the request: kept once in the code, not in every row
_SAME_EVERY_TIME = frozenset({"content-security-policy", "strict-transport-security", "x-content-type-options",
                              "referrer-policy", "x-frame-options", "permissions-policy",
                              "cross-origin-opener-policy", "cross-origin-resource-policy", "x-request-id"})


class BodyCapture:
    """A request body as the app reads it: its size counted, and its chunks kept while they may be logged."""

    __slots__ = ("_receive", "chunks", "size")

    def __init__(self, receive: Receive, keep: bool, /) -> None:
        self._receive = receive
        self.size = 0
        self.chunks: list[bytes] | None = [] if keep else None

    async def receive(self) -> Message:
        message = await self._receive()
        body = message.get("body", b"")
        self.size += len(body)
        if self.chunks is not None:
            if self.size <= BODY_LIMIT:
                self.chunks.append(body)
            else:
                self.chunks = None  # too big after all (no Content-Length): keep nothing rather than buffer
        return message


class Answer:
    """The response on its way out: its status, size and headers as the app sent them (for the record and the
    figures), the request id added."""

    __slots__ = ("_id_header", "_send", "bytes_out", "headers", "status")

    def __init__(self, send: Send, id_header: tuple[bytes, bytes]) -> None:
        self._send = send
        self._id_header = id_header
        self.status = 0
        self.bytes_out = 0
        self.headers: list[tuple[bytes, bytes]] = []  # (the id is not logged as one of them)

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            self.bytes_out += len(message.get("body", b""))
        elif message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = message.get("headers", [])
            # a new list: the response cache sends the same header list for every hit
            message = {**message, "headers": [*self.headers, self._id_header]}
        await self._send(message)


class RequestRecorder:
    """Builds each request's record and hands it to the writer."""

    def __init__(self, writer: RequestLogWriter, *, pool: str) -> None:
        self.writer = writer
        self.pool = pool
        self._pid = os.getpid()

    def capture(self, context: RequestContext, receive: Receive) -> BodyCapture:
        """The body's counter; it keeps the chunks of a small body whose fields the record can show."""
        content_type = context.content_type
        return BodyCapture(receive, context.content_length <= BODY_LIMIT
                           and any(kind in content_type for kind in _FIELD_BODIES))

    def record(self, context: RequestContext, scope: Scope, arrived: float, seconds: float, route: str | None,
               status: int, body: BodyCapture | None, answer: Answer, /) -> bool:
        """Submit the request's record; False when the writer's queue had no room for it."""
        path = context.path
        try:
            user_agent = context.user_agent
            record = RequestRecord(
                id=context.id, at=datetime.fromtimestamp(arrived, UTC), method=scope["method"],
                path=path if path.isprintable() else _printable(path),
                route=route, query=_query(scope["query_string"]),
                status=status, duration_ms=round(seconds * 1000, 3),
                bytes_in=0 if body is None else body.size, bytes_out=answer.bytes_out,
                client_ip=context.client_ip,
                user_agent=None if user_agent is None else _printable(user_agent.decode("latin-1")),
                user_id=context.state.get("user_id"), worker_pid=self._pid, pool=self.pool,
                details=_details(scope["headers"], answer.headers, context, body))
        except Exception:  # the request is answered; its record is not worth a failure
            log.exception("request log: could not build the record of %s %s", scope["method"], path)
            return True
        return self.writer.submit(record)


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
    route carry the same headers (a response cache hit sends the very same list), and a remembered answer is
    much cheaper than redacting again. A list with a secret in it (a cookie, a token) is never kept, so no secret
    outlives its request here. The dicts handed out are shared by many records, which only ever read them."""

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
             context: RequestContext, body: BodyCapture | None) -> dict[str, Any]:
    details: dict[str, Any] = {"request_headers": _request_headers(request_headers),
                               "response_headers": _response_headers(response_headers)}
    size = 0 if body is None else body.size
    if body is not None and body.chunks is not None and size:
        details["body"] = redact_body(context.content_type.decode("latin-1"), b"".join(body.chunks))
    elif context.has_body and size:
        kind = context.content_type.split(b";", 1)[0].decode("latin-1") or "no content type"
        details["body"] = f"[not kept: {kind}, {size} bytes]"
    return details
