"""Start gunicorn with uvicorn workers, one per core unless told otherwise."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP = "shop.bootstrap:create_asgi_app()"


@dataclass(frozen=True, slots=True)
class ServeOptions:
    host: str
    port: int
    workers: int
    log_level: str = "info"
    bind: str | None = None  # overrides host:port, e.g. unix:/run/shop.sock
    run_dir: Path = Path("var/run")  # gunicorn's control socket; one per server, so several can run at once
    pool: str = "main"  # the route pool this server serves (SHOP_POOL in its workers)
    max_requests: int = 0  # recycle a worker after this many requests (0: never), against slow leaks
    max_requests_jitter: int | None = None  # default: a tenth of max_requests, so workers do not recycle together

    @property
    def address(self) -> str:
        return self.bind or f"{self.host}:{self.port}"

    @property
    def jitter(self) -> int:
        if self.max_requests_jitter is not None:
            return self.max_requests_jitter
        return self.max_requests // 10


def gunicorn_argv(options: ServeOptions) -> list[str]:
    bind = options.address
    control = options.run_dir / f"gunicorn-{re.sub(r'[^A-Za-z0-9.]+', '-', bind).strip('-')}.ctl"
    argv = [
        sys.executable, "-m", "gunicorn", APP,
        "--config", "python:shop.runtime.gunicorn_conf",
        "--bind", bind,
        "--workers", str(options.workers),
        "--log-level", options.log_level,
        "--control-socket", str(control),
        "--name", f"shop-{options.pool}",
    ]
    if options.max_requests > 0:
        argv += ["--max-requests", str(options.max_requests), "--max-requests-jitter", str(options.jitter)]
    return argv


def gunicorn_env(options: ServeOptions, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of one server: the caller's, with the pool its workers report and log under."""
    env = dict(os.environ if base is None else base)
    env["SHOP_POOL"] = options.pool
    return env


def exec_gunicorn(options: ServeOptions) -> None:
    """Replace this process with gunicorn's master, so signals reach it directly."""
    if shutil.which(sys.executable) is None:  # pragma: no cover - a broken interpreter path
        raise RuntimeError(f"cannot find the Python interpreter {sys.executable}")
    options.run_dir.mkdir(parents=True, exist_ok=True)
    argv = gunicorn_argv(options)
    os.execve(argv[0], argv, gunicorn_env(options))  # noqa: S606
