"""Who is on the other end of a request: the client address the trusted proxies vouch for.

The request-log middleware (outermost) works it out once per request from the peer and `X-Forwarded-For`, believing
the header only from `SHOP_TRUSTED_PROXIES`, and leaves it in the request's state. Everything that keys on the
client — throttles, logs, access to `/metrics` — reads it here, never `request.client` (the peer: behind a proxy,
the proxy).
"""

from __future__ import annotations

from starlette.requests import Request

LOCAL = "local"  # a Unix-socket peer (nginx in front of the pools) that named no client
# a trusted proxy forwarded a hop that is not an address: whoever it is, not the proxy (all such share one key)
UNKNOWN = "unknown"


def client_address(request: Request) -> str:
    """The client's address, as the trusted proxies vouch for it."""
    state = request.scope.get("state") or {}
    address = state.get("client_ip")
    if address:
        return str(address)
    if "client_ip" in state:
        return LOCAL
    return request.client.host if request.client else LOCAL  # an app run without the middleware (unit tests)


def client_trusted(request: Request) -> bool:
    """The client is itself one of the trusted proxies (or on the Unix socket); False without the middleware."""
    state = request.scope.get("state") or {}
    return bool(state.get("client_trusted", False))
