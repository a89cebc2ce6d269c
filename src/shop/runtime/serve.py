"""Start gunicorn with uvicorn workers, one per core unless told otherwise."""

from __future__ import annotations

import os
import re
import shutil
import sys
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


def gunicorn_argv(options: ServeOptions) -> list[str]:
    bind = options.bind or f"{options.host}:{options.port}"
    control = options.run_dir / f"gunicorn-{re.sub(r'[^A-Za-z0-9.]+', '-', bind).strip('-')}.ctl"
    return [
        sys.executable, "-m", "gunicorn", APP,
        "--config", "python:shop.runtime.gunicorn_conf",
        "--bind", bind,
        "--workers", str(options.workers),
        "--log-level", options.log_level,
        "--control-socket", str(control),
    ]


def exec_gunicorn(options: ServeOptions) -> None:
    """Replace this process with gunicorn's master, so signals reach it directly."""
    if shutil.which(sys.executable) is None:  # pragma: no cover - a broken interpreter path
        raise RuntimeError(f"cannot find the Python interpreter {sys.executable}")
    options.run_dir.mkdir(parents=True, exist_ok=True)
    argv = gunicorn_argv(options)
    os.execv(argv[0], argv)  # noqa: S606
