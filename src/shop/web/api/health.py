"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from shop.services.ports import StoreUnavailable
from shop.web.deps import StoresDep
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
async def readyz(stores: StoresDep) -> Response:
    """Ready: every store (main, users, posts) answers a query."""
    async def check(probe_index: int) -> str | None:
        try:
            await stores[probe_index].ping()
        except StoreUnavailable as exc:
            return f"{exc.host}: {exc.reason}"
        return None

    results = await asyncio.gather(*(check(i) for i in range(len(stores))))
    states = {probe.name: (error or "ok") for probe, error in zip(stores, results, strict=True)}
    failed = [name for name, state in states.items() if state != "ok"]
    if failed:
        return problem(503, f"unreachable: {', '.join(failed)}", extra={"stores": states})
    return JSON({"status": "ready", "stores": states})
