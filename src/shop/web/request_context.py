"""A request's context, set up first thing by the outermost middleware (`shop.web.request_log`): its id, the
client the trusted proxies vouch for (`shop.web.client`), the scheme the client used, and the route it took.

Trust: `X-Request-ID`, `X-Forwarded-For` and `X-Forwarded-Proto` are believed only from a peer in
`SHOP_TRUSTED_PROXIES` (loopback by default) or on a Unix socket (nginx in front of the pools).
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

from shop.web.cache import Scope
from shop.web.client import TrustedProxies

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
_LEARNED_ROUTES = 4096


class RequestContext:
    """One request's id and client, and what its headers say about its body (for the record)."""

    __slots__ = ("client_ip", "content_length", "content_type", "has_body", "id", "id_header", "path", "state",
                 "user_agent")

    # positional: this is made for every request, and keywords would cost it about twice as much
    def __init__(self, id: str, client_ip: str | None, state: dict[str, Any], path: str, content_type: bytes,
                 content_length: int, has_body: bool, user_agent: bytes | None, /) -> None:
        self.id = id
        self.id_header = (b"x-request-id", id.encode())
        self.client_ip = client_ip  # None: a Unix socket
        self.state = state
        self.path = path
        self.content_type = content_type
        self.content_length = content_length  # -1: not sent, or not a number
        self.has_body = has_body
        self.user_agent = user_agent


class RequestContexts:
    """Makes each request's context: one pass over its headers, the trust decision, a new id when none is believed."""

    def __init__(self, trusted: TrustedProxies) -> None:
        self.trusted = trusted
        self._prefix = os.urandom(5).hex()  # keeps the ids of concurrent workers apart
        self._sequence = itertools.count()

    def new_id(self, now: float) -> str:
        """32 hex characters, ordered by time: milliseconds, this worker's prefix, a sequence number."""
        return f"{int(now * 1000):012x}{self._prefix}{next(self._sequence) & 0xFF_FFFF_FFFF:010x}"

    def begin(self, scope: Scope, arrived: float) -> RequestContext:
        """The request's context, also left in its state (`request_id`, `client_ip`, `client_trusted`) and, from a
        trusted proxy that says so, its scheme (https at the proxy: HSTS and secure cookies)."""
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
        trusted = self.trusted
        peer = scope.get("client")
        client_ip = peer[0] if peer and peer[0] else None  # None: a Unix socket
        peer_trusted = client_ip is None or client_ip in trusted
        if peer_trusted:
            if forwarded is not None:
                client_ip = trusted.client_of(forwarded.decode("latin-1"))
            if proto is not None:  # the request is http from the proxy on
                scheme = proto.strip().lower()
                if scheme in (b"http", b"https"):
                    scope["scheme"] = scheme.decode()
        request_id = sent_id.decode() if peer_trusted and sent_id and _REQUEST_ID.match(sent_id) \
            else self.new_id(arrived)
        # this request's own copy: a server may hand every request the same lifespan state dict
        state = scope["state"] = {**scope["state"]} if "state" in scope else {}
        state["request_id"] = request_id
        state["client_ip"] = client_ip
        state["client_trusted"] = client_ip is None or client_ip in trusted
        return RequestContext(request_id, client_ip, state, scope["path"], content_type, content_length, has_body,
                              user_agent)


class RouteTemplates:
    """The route template a request took (`/api/v1/products/{slug}`), for its figures and its record. A response
    cache hit never reaches a route: its template is the one a GET of the same path took before."""

    def __init__(self) -> None:
        self._learned: dict[str, str] = {}  # GET path → route template

    def of(self, scope: Scope, path: str) -> str | None:
        route = scope.get("route")
        if route is None:
            return self._learned.get(path) if scope["method"] in ("GET", "HEAD") else None
        template: str | None = getattr(route, "path_format", None) or getattr(route, "path", None)
        if template and scope["method"] == "GET" and path not in self._learned:
            if len(self._learned) >= _LEARNED_ROUTES:
                self._learned.clear()
            self._learned[path] = template
        return template
