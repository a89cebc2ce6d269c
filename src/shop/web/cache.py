"""A response cache in front of the framework for anonymous catalogue reads.

A hit is answered here without entering FastAPI. Entries are dropped whenever the catalogue version moves
(the watcher checks it twice a second in every worker), so an edit is visible everywhere within a second.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PRIVATE = (b"authorization", b"cookie")
_CACHE_CONTROL = (b"cache-control", b"no-cache")
_BODY_HEADERS = (b"content-length", b"content-type", b"content-encoding")


@dataclass(frozen=True, slots=True)
class _Entry:
    headers: list[tuple[bytes, bytes]]  # as sent on a hit: x-cache included, built once
    body: bytes
    etag: bytes
    not_modified: list[tuple[bytes, bytes]]


class ResponseCache:
    def __init__(self, app: ASGIApp, *, prefixes: tuple[str, ...], max_entries: int) -> None:
        self.app = app
        self._prefixes = prefixes
        self._max = max_entries
        self._entries: dict[tuple[str, bytes, bool], _Entry] = {}
        self._generation = 0
        self.hits = 0
        self.misses = 0

    def clear(self, _version: int | None = None) -> None:
        self._entries.clear()
        self._generation += 1

    def __len__(self) -> int:
        return len(self._entries)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] not in ("GET", "HEAD")
                or not scope["path"].startswith(self._prefixes)):
            await self.app(scope, receive, send)
            return
        if_none_match = None
        for name, value in scope["headers"]:
            if name in _PRIVATE:
                await self.app(scope, receive, send)
                return
            if name == b"if-none-match":
                if_none_match = value
        key = (scope["path"], scope["query_string"], scope.get("scheme") == "https")  # HSTS goes to https only
        entry = self._entries.get(key)
        if entry is not None:
            self.hits += 1
            await self._answer(entry, scope, send, if_none_match)
            return
        self.misses += 1
        await self._fill(key, scope, receive, send, if_none_match)

    @staticmethod
    async def _answer(entry: _Entry, scope: Scope, send: Send, if_none_match: bytes | None,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
        if if_none_match is not None and (entry.etag in if_none_match or if_none_match.strip() == b"*"):
            await send({"type": "http.response.start", "status": 304, "headers": entry.not_modified})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers or entry.headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else entry.body})

    async def _fill(self, key: tuple[str, bytes, bool], scope: Scope, receive: Receive, send: Send,
                    if_none_match: bytes | None) -> None:
        generation = self._generation
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                if message["status"] != 200:  # pass anything else straight through, uncached
                    await send(message)
                return
            if start is None or start["status"] != 200:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            etag = b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'
            headers = [(k, v) for k, v in start["headers"] if k not in (b"etag", b"cache-control")]
            headers += [(b"etag", etag), _CACHE_CONTROL]
            # a 304 carries what the 200 would have, but nothing about a body it does not have
            not_modified = [(k, v) for k, v in headers if k not in _BODY_HEADERS]
            entry = _Entry(headers=[*headers, (b"x-cache", b"hit")], body=body, etag=etag,
                           not_modified=[*not_modified, (b"x-cache", b"hit")])
            if generation == self._generation and scope["method"] == "GET":
                if len(self._entries) >= self._max:
                    self._entries.pop(next(iter(self._entries)))
                self._entries[key] = entry
            await self._answer(entry, scope, send, if_none_match, [*headers, (b"x-cache", b"miss")])

        await self.app(scope, receive, capture)
