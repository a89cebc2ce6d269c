"""The coalescing transport under `shop serve`'s workers: a response's head and body leave in one write, nothing is
held past one turn of the loop, reordered or lost; and uvicorn serves real connections through it."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

from shop.runtime.http_worker import CoalescingHttpToolsProtocol, CoalescingTransport


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000)}.get(name, default)


async def turn() -> None:
    await asyncio.sleep(0)


async def test_a_head_and_a_body_written_in_one_turn_leave_in_one_write() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert real.writes == []  # held for its body
    transport.write(b"hi")
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"]
    await turn()
    assert len(real.writes) == 1  # the scheduled flush found nothing left


async def test_a_lone_write_leaves_on_the_next_turn_and_order_is_kept() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"head")
    await turn()
    assert real.writes == [b"head"]  # a streamed response's head does not wait for its body
    for chunk in (b"a", b"b", b"c"):
        transport.write(memoryview(chunk))
    await turn()
    assert b"".join(real.writes) == b"headabc"
    assert transport.get_write_buffer_size() == 0 and transport.get_extra_info("peername") == ("127.0.0.1", 5000)


async def test_close_sends_what_is_held_first_and_abort_drops_it() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"last words")
    transport.close()
    assert real.writes == [b"last words"] and real.closed
    await turn()
    assert real.writes == [b"last words"]  # the scheduled flush does not write after the close

    other = RecordingTransport()
    transport = CoalescingTransport(other, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"never mind")
    transport.abort()
    await turn()
    assert other.writes == [] and other.aborted


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/stream":  # the body comes a while after the head
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await asyncio.sleep(0.3)
        await send({"type": "http.response.body", "body": b"late", "more_body": False})
        return
    body = scope["path"].encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def read_until(reader: asyncio.StreamReader, marker: bytes) -> bytes:
    return await asyncio.wait_for(reader.readuntil(marker), timeout=5)


async def test_uvicorn_serves_keep_alive_pipelined_and_streamed_responses_through_it() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.listen()  # connections wait in the backlog until the server takes them
    server = uvicorn.Server(uvicorn.Config(app, http=CoalescingHttpToolsProtocol, log_level="warning",
                                           lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # two requests in one packet: both answered, in order, on the same connection
        writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await read_until(reader, b"/one")
        second = await read_until(reader, b"/two")
        assert first.startswith(b"HTTP/1.1 200 OK") and b"content-length: 4" in first
        assert second.startswith(b"HTTP/1.1 200 OK")
        # a streamed response: its head arrives long before its body
        writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        loop = asyncio.get_running_loop()
        asked = loop.time()
        head = await read_until(reader, b"\r\n\r\n")
        head_after = loop.time() - asked
        body = await read_until(reader, b"0\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK") and b"transfer-encoding: chunked" in head
        assert head_after < 0.2 and b"late" in body
        writer.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=10)
