"""The response cache drops exactly the answers tagged with what changed, and never keeps one built across a change."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from shop.web.cache import ResponseCache, tag_response


class App:
    """Answers /p/<name> with a counter, tagged `sku:<name>`; can be held mid-answer."""

    def __init__(self) -> None:
        self.calls = 0
        self.hold: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls += 1
        name = scope["path"].rsplit("/", 1)[-1]
        tag_response(scope, [f"sku:{name}"])
        self.started.set()
        if self.hold is not None:
            await self.hold.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": f"{name} {self.calls}".encode()})


async def get(cache: ResponseCache, path: str) -> tuple[str, str]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": [], "scheme": "http"}
    await cache(scope, None, send)
    headers = dict(sent[0]["headers"])
    return sent[1]["body"].decode(), headers[b"x-cache"].decode()


def cache_over(app: App, entries: int = 100) -> ResponseCache:
    return ResponseCache(app, prefixes=("/p/",), max_entries=entries)  # type: ignore[arg-type]


async def test_an_invalidated_tag_drops_its_answers_and_no_other() -> None:
    app = App()
    cache = cache_over(app)
    await get(cache, "/p/a")
    await get(cache, "/p/b")
    assert cache.invalidate(["sku:a"]) == 1
    assert await get(cache, "/p/a") == ("a 3", "miss")
    assert await get(cache, "/p/b") == ("b 2", "hit")


async def test_an_answer_built_while_its_tag_was_invalidated_is_sent_but_not_kept() -> None:
    app = App()
    cache = cache_over(app)
    app.hold = asyncio.Event()
    reading = asyncio.create_task(get(cache, "/p/a"))  # read the stock, then the sale commits and is seen
    await app.started.wait()
    cache.invalidate(["sku:a"])
    app.hold.set()
    assert await reading == ("a 1", "miss")
    app.hold = None
    assert await get(cache, "/p/a") == ("a 2", "miss")  # the old state was not put back
    assert await get(cache, "/p/a") == ("a 2", "hit")


async def test_an_answer_built_across_a_clear_is_not_kept() -> None:
    app = App()
    cache = cache_over(app)
    app.hold = asyncio.Event()
    reading = asyncio.create_task(get(cache, "/p/a"))
    await app.started.wait()
    cache.clear()
    app.hold.set()
    await reading
    assert len(cache) == 0


async def test_an_invalidation_of_another_tag_meanwhile_does_not_stop_an_answer_being_kept() -> None:
    app = App()
    cache = cache_over(app)
    app.hold = asyncio.Event()
    reading = asyncio.create_task(get(cache, "/p/a"))
    await app.started.wait()
    cache.invalidate(["sku:b"])
    app.hold.set()
    await reading
    assert await get(cache, "/p/a") == ("a 1", "hit")


async def test_evicted_answers_leave_no_tag_behind() -> None:
    app = App()
    cache = cache_over(app, entries=2)
    for name in "abc":
        await get(cache, f"/p/{name}")
    assert len(cache) == 2 and "sku:a" not in cache._tagged
    assert cache.invalidate(["sku:a", "sku:b", "sku:c"]) == 2
    assert len(cache) == 0 and not cache._tagged


async def test_the_cache_answers_only_while_every_source_of_invalidations_is_up_to_date() -> None:
    app = App()
    cache = ResponseCache(app, prefixes=("/p/",), max_entries=10, fresh_for=0.2)  # type: ignore[arg-type]
    stock, catalogue = cache.freshness("stock"), cache.freshness("catalogue")
    await get(cache, "/p/a")
    assert await get(cache, "/p/a") == ("a 2", "miss")  # no source has checked yet
    stock(time.monotonic())
    assert (await get(cache, "/p/a"))[1] == "miss"  # one has, the other not
    catalogue(time.monotonic())
    assert (await get(cache, "/p/a"))[1] == "hit"
    behind = cache.behind
    await asyncio.sleep(0.25)  # the stock's last check began too long ago: it may have missed a sale
    catalogue(time.monotonic())
    assert await get(cache, "/p/a") == ("a 4", "miss")
    assert cache.behind == behind + 1
    stock(time.monotonic())
    assert (await get(cache, "/p/a"))[1] == "hit"
