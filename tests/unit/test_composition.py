"""The composition root builds each store's adapters once per process and hands the same ones to every service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shop import bootstrap
from shop.config import Settings


def counted(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    built: list[Any] = []
    real = getattr(bootstrap, name)

    def build(*args: Any, **kwargs: Any) -> Any:
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(bootstrap, name, build)
    return built


async def test_a_web_worker_builds_the_users_store_and_the_web_sessions_once(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    users, web_sessions = counted(monkeypatch, "build_users_store"), counted(monkeypatch, "build_web_sessions")
    settings = Settings(_env_file=None, main_db_url=f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}",  # type: ignore[call-arg]
                        var_dir=tmp_path, run_dir=tmp_path / "run")
    services = bootstrap.build_services(settings)
    try:
        assert len(users) == 1, "every service of a worker shares one set of the users store's adapters"
        assert len(web_sessions) == 1
        assert services.web_sessions is web_sessions[0]
    finally:
        await services.close()
