"""Reference apps served on the same gunicorn + uvicorn stack as the shop, to put its figures in context.

- `bare`: a bare ASGI callable answering `{"hello":"world"}`: the ceiling of the server stack itself.
- `hello`: FastAPI with one route returning that small dict: what the framework costs.
- `items`: FastAPI returning 24 Pydantic product cards built per request, no database: what a catalogue
  page costs without its queries.

Serve one with `python -m gunicorn bench.apps:bare -k uvicorn_worker.UvicornWorker -w 2 -b 127.0.0.1:PORT`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HELLO_BODY = b'{"hello":"world"}'
_HELLO_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_HELLO_BODY)).encode())]


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    """The smallest ASGI app: the same JSON for every request; lifespan answered so uvicorn does not warn."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HELLO_HEADERS})
    await send({"type": "http.response.body", "body": _HELLO_BODY})


hello = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@hello.get("/")
async def say_hello() -> dict[str, str]:
    return {"hello": "world"}


class MoneyOut(BaseModel):
    amount: str
    currency: str


class ImageOut(BaseModel):
    url: str
    alt: str


class ProductCard(BaseModel):
    slug: str
    title: str
    price: MoneyOut
    image: ImageOut | None
    in_stock: bool
    category_id: int | None


_NAMES = ("Everyday Linen T-shirt", "Nordic Wool Sweater", "Coastal Denim Field Jacket",
          "Alpine Suede Runner", "Urban Brass Table Lamp", "Harbour Oak Cutting Board")
# (slug, title, price, in stock, category id) of 24 cards
_CARD_VALUES: list[tuple[str, str, str, bool, int]] = [
    (f"{title.lower().replace(' ', '-')}-{n + 1}", title, f"{19 + 7 * n}.{(n * 13) % 100:02d}", n % 5 != 0,
     2 + n % 18)
    for n, title in ((n, _NAMES[n % len(_NAMES)]) for n in range(24))
]

items = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@items.get("/", response_model=list[ProductCard])
async def list_cards() -> list[ProductCard]:
    """24 cards shaped like the shop's product list, built (and so validated) on every request."""
    return [
        ProductCard(slug=slug, title=title, price=MoneyOut(amount=amount, currency="EUR"),
                    image=ImageOut(url=f"/media/placeholder/{slug}.svg", alt=title), in_stock=in_stock,
                    category_id=category_id)
        for slug, title, amount, in_stock, category_id in _CARD_VALUES
    ]
