"""A response cache in front of the framework for anonymous catalogue reads.

What it holds: the 200 answers (headers and body) of anonymous GETs under the catalogue's prefixes, keyed by
path, query string and scheme, at most `max_entries` of them (the oldest goes first).
How long: until something they show may have changed, and no longer than the freshness bound (1 s) after it did:
- `clear()` drops everything: called when the catalogue version moves (titles, prices, publication, images,
  categories and the in-stock flags; every worker polls it, `SHOP_CATALOG_POLL_INTERVAL`);
- `invalidate(tags)` drops the entries a route tagged with what they show: a product's page is tagged with its
  SKUs (`sku:<SKU>`) and dropped when the stock watcher sees any of them move (`SHOP_STOCK_POLL_INTERVAL`).
An answer being built while one of its tags is invalidated is sent but not kept, so a read that began before a
change cannot put the old state back after the change was seen. And the cache answers only while every source of
invalidations (`freshness(name)`) has completed a check that began less than `fresh_for` seconds ago: a worker
whose polls fall behind (a saturated database or pool) reads through to the app instead of answering stale.
See README "Caches and their contract".
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TAGS = "shop.cache_tags"  # scope key: a list the route appends its tags to, present only while filling an entry
_PRIVATE = (b"authorization", b"cookie")
_CACHE_CONTROL = (b"cache-control", b"no-cache")
_BODY_HEADERS = (b"content-length", b"content-type", b"content-encoding")
_MAX_TRACKED_TAGS = 100_000  # invalidated tags remembered for fills in flight; beyond this, those fills are not kept

Key = tuple[str, bytes, bool]
log = logging.getLogger(__name__)
_BEHIND_LOG_EVERY_S = 10.0


def sku_tag(sku: str) -> str:
    """The tag of answers that show this SKU's stock."""
    return f"sku:{sku}"


def tag_response(scope: Scope, tags: Iterable[str]) -> None:
    """Name what a response shows, so the cache can drop it when that changes (no-op when it is not cached)."""
    found = scope.get(TAGS)
    if found is not None:
        found.extend(tags)


@dataclass(frozen=True, slots=True)
class _Entry:
    headers: list[tuple[bytes, bytes]]  # as sent on a hit: x-cache included, built once
    body: bytes
    etag: bytes
    not_modified: list[tuple[bytes, bytes]]
    tags: tuple[str, ...]


class ResponseCache:
    def __init__(self, app: ASGIApp, *, prefixes: tuple[str, ...], max_entries: int,
                 fresh_for: float = math.inf) -> None:
        self.app = app
        self._prefixes = prefixes
        self._max = max_entries
        self._fresh_for = fresh_for
        self._checked: dict[str, float] = {}  # source → time.monotonic() at which its last good check began
        self._answers_until = math.inf  # hits are served until then
        self._entries: dict[Key, _Entry] = {}
        self._tagged: dict[str, set[Key]] = {}
        # every clear or invalidation is a new epoch; a fill that began before the epoch in which one of its tags
        # was dropped (or before the last clear) is not kept
        self._epoch = 0
        self._cleared_at = 0
        self._dropped_at: dict[str, int] = {}
        self.hits = 0
        self.misses = 0
        self.behind = 0  # reads passed through because a source of invalidations was behind
        self._behind_logged = -math.inf

    def freshness(self, source: str) -> Callable[[float], None]:
        """The listener a source of invalidations calls when a check that began at `began` has told the cache
        everything it found; until every source has, the cache answers nothing."""
        self._checked[source] = -math.inf
        self._answers_until = -math.inf

        def checked(began: float) -> None:
            self._checked[source] = max(began, self._checked[source])
            self._answers_until = min(self._checked.values()) + self._fresh_for

        return checked

    def clear(self, _version: int | None = None) -> None:
        self._entries.clear()
        self._tagged.clear()
        self._dropped_at.clear()
        self._epoch += 1
        self._cleared_at = self._epoch

    def invalidate(self, tags: Iterable[str]) -> int:
        """Drop every entry tagged with one of `tags`; returns how many went."""
        self._epoch += 1
        if len(self._dropped_at) > _MAX_TRACKED_TAGS:
            self._dropped_at.clear()
            self._cleared_at = self._epoch  # fills that began before now are not kept: they may miss this one
        dropped = 0
        for tag in tags:
            self._dropped_at[tag] = self._epoch
            for key in self._tagged.pop(tag, ()):
                if self._remove(key):
                    dropped += 1
        return dropped

    def _remove(self, key: Key) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        for tag in entry.tags:
            keys = self._tagged.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tagged[tag]
        return True

    def _keep(self, key: Key, entry: _Entry, began: int) -> None:
        if began < self._cleared_at or any(self._dropped_at.get(tag, 0) > began for tag in entry.tags):
            return  # what it shows changed while it was being built
        if key in self._entries:
            self._remove(key)
        elif len(self._entries) >= self._max:
            self._remove(next(iter(self._entries)))
        self._entries[key] = entry
        for tag in entry.tags:
            self._tagged.setdefault(tag, set()).add(key)

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
        if entry is not None and (now := time.monotonic()) >= self._answers_until:
            self.behind += 1
            entry = None
            if now - self._behind_logged >= _BEHIND_LOG_EVERY_S:
                self._behind_logged = now
                log.warning("response cache: its invalidations are %.1f s behind (checks slowed down); reads go "
                            "to the app until they catch up", now - self._answers_until + self._fresh_for)
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

    async def _fill(self, key: Key, scope: Scope, receive: Receive, send: Send, if_none_match: bytes | None) -> None:
        began = self._epoch
        tags: list[str] = []
        scope[TAGS] = tags
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
                           not_modified=[*not_modified, (b"x-cache", b"hit")], tags=tuple(dict.fromkeys(tags)))
            if scope["method"] == "GET":
                self._keep(key, entry, began)
            await self._answer(entry, scope, send, if_none_match, [*headers, (b"x-cache", b"miss")])

        await self.app(scope, receive, capture)
