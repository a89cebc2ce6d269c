"""The gunicorn worker `shop serve` runs: uvicorn's, with a response's head and body sent in one write.

uvicorn writes a response's status line and headers as soon as the app starts the response, and its body when the
app sends it: two `send()` system calls (and, over TCP, two segments) for every response, although nearly every
response's body follows its head within the same turn of the event loop, and a system call costs as much as a
response cache lookup (docs/decisions/2026-12-06-one-write-per-response.md).

`CoalescingTransport` holds one write back: the next write goes out together with it, and if none comes in the
same turn of the loop, the held bytes go out on their own at the start of the next turn (a streamed response
whose body comes later is delayed by one turn, never more). Closing or aborting the connection deals with the
held bytes first, so nothing is reordered or lost. Everything else is the stock uvicorn worker, but for the
`server` header, which it leaves out, and uvicorn's proxy headers, which it does not read.

Proxy headers: uvicorn would take the client and the scheme from `X-Forwarded-For`/`-Proto` of any peer in
gunicorn's FORWARDED_ALLOW_IPS (`*`: anyone) and hand the app a peer it made up. The shop reads them itself, from
SHOP_TRUSTED_PROXIES only, where it can see the real peer (`shop.web.request_context`), so FORWARDED_ALLOW_IPS does
nothing here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker


class CoalescingTransport:
    """A stream transport that joins each write with the one after it when both come within one loop turn."""

    __slots__ = ("_held", "_loop", "_scheduled", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            if not self._scheduled:
                self._scheduled = True
                self._loop.call_soon(self._flush)
            return
        self._held = None
        self.transport.write(held + data)

    def _flush(self) -> None:
        self._scheduled = False
        held = self._held
        if held is not None:
            self._held = None
            self.transport.write(held)

    def writelines(self, data: Any) -> None:
        self.write(b"".join(data))

    def close(self) -> None:
        self._flush()
        self.transport.close()

    def write_eof(self) -> None:
        self._flush()
        self.transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:  # anything else a protocol may ask of its transport
        return getattr(self.transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]


class ShopWorker(UvicornWorker):  # type: ignore[misc]  # uvicorn_worker ships no types
    """uvicorn's gunicorn worker (uvloop when installed) with the coalescing HTTP protocol."""

    # no `server: uvicorn` header: it tells a scanner what to try, and costs every response a header;
    # no proxy headers: the app sees the real peer and trusts only SHOP_TRUSTED_PROXIES (see the docstring)
    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": CoalescingHttpToolsProtocol, "server_header": False,
                                     "proxy_headers": False}
