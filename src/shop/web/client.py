"""Who is on the other end of a request: the client address the trusted proxies vouch for.

The request context (`shop.web.request_context`, in the outermost middleware) works it out once per request from
the peer and `X-Forwarded-For` with `TrustedProxies`, believing the header only from `SHOP_TRUSTED_PROXIES`, and
leaves it in the request's state. Everything that keys on the client — throttles, logs, access to `/metrics` —
reads it here, never `request.client` (the peer: behind a proxy, the proxy).

The client is the right-most forwarded address that is not itself a trusted proxy; a hop that is not an address
makes it unknown (see `TrustedProxies.client_of`). uvicorn's own proxy-header handling is off in the shop's worker
(`shop.runtime.http_worker`), so the peer seen there is the real one and this is the only place that decides.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

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
