"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from shop.services.ports import StoreUnavailable
from shop.services.shop import ShopServices
from shop.web.problems import problem
from shop.web.responses import JSON

router = APIRouter(tags=["health"])


class Alive(BaseModel):
    status: str = Field(examples=["ok"])


class Ready(BaseModel):
    status: str = Field(examples=["ready"])
    stores: dict[str, str] = Field(examples=[{"main": "ok", "users": "ok", "posts": "ok"}],
                                   description="each store's state; a 503 problem lists them too")


@router.get("/healthz", response_model=Alive, summary="The process is alive")
async def healthz() -> Response:
    """Alive: answers without touching any store."""
    return JSON({"status": "ok"})


@router.get("/readyz", response_model=Ready, summary="Every store answers",
            responses={503: {"description": "a store is unreachable"}})
async def readyz(request: Request) -> Response:
    """Ready: every store (main, users, posts) answers a query."""
    services: ShopServices = request.app.state.services

    async def check(probe_index: int) -> str | None:
        try:
            await services.stores[probe_index].ping()
        except StoreUnavailable as exc:
            return f"{exc.host}: {exc.reason}"
        return None

    results = await asyncio.gather(*(check(i) for i in range(len(services.stores))))
    stores = {probe.name: (error or "ok") for probe, error in zip(services.stores, results, strict=True)}
    failed = [name for name, state in stores.items() if state != "ok"]
    if failed:
        return problem(503, f"unreachable: {', '.join(failed)}", extra={"stores": stores})
    return JSON({"status": "ready", "stores": stores})
