"""Who is on the other end of a request: the client address the trusted proxies vouch for.

The request-log middleware (outermost) works it out once per request from the peer and `X-Forwarded-For`, believing
the header only from `SHOP_TRUSTED_PROXIES`, and leaves it in the request's state. Everything that keys on the
client — throttles, logs, access to `/metrics` — reads it here, never `request.client` (which uvicorn may have taken
from a header anyone can send).
"""

from __future__ import annotations

from starlette.requests import Request

LOCAL = "local"  # a Unix-socket peer (nginx in front of the pools) that named no client


def client_address(request: Request) -> str:
    """The client's address, as the trusted proxies vouch for it."""
    state = request.scope.get("state") or {}
    address = state.get("client_ip")
    if address:
        return str(address)
    if "client_ip" in state:
        return LOCAL
    return request.client.host if request.client else LOCAL  # an app run without the middleware (unit tests)
