"""Gunicorn settings for `shop serve`; values come from the command line where it gives them.

Metrics: every worker writes its Prometheus figures to files in `{run_dir}/metrics` (PROMETHEUS_MULTIPROC_DIR),
and any worker answering /metrics sums them. The master sets the variable before forking, so each worker imports
prometheus_client already in multiprocess mode — which is why nothing here imports it at the top. Several
gunicorns (one per route pool) share the directory, so at start only the files of processes that are gone are
removed; when a worker dies its live gauges (in flight, pools) are removed so they stop counting.
"""

from __future__ import annotations

import gc
import os
import re
from pathlib import Path
from typing import Any

worker_class = "shop.runtime.http_worker.ShopWorker"  # uvicorn's, one write per response
preload_app = False  # every worker builds its own engines after the fork; nothing connects in the master
keepalive = 5
graceful_timeout = 20
timeout = 60
proc_name = "shop"

_METRICS_FILE = re.compile(r"_(\d+)\.db$")  # counter_1234.db, gauge_livesum_1234.db, histogram_1234.db


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def metrics_dir() -> Path:
    """PROMETHEUS_MULTIPROC_DIR when set; else `{SHOP_RUN_DIR}/metrics`."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        return Path(configured)
    from shop.config import Settings  # reads SHOP_* and .env as the workers will

    return Settings().run_dir / "metrics"


def forget_dead_processes(directory: Path) -> int:
    """Remove the metric files of processes no longer alive; returns how many went."""
    gone = 0
    for path in directory.glob("*.db"):
        match = _METRICS_FILE.search(path.name)
        if match and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            gone += 1
    return gone


def on_starting(server: Any) -> None:
    directory = metrics_dir().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    forget_dead_processes(directory)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def post_worker_init(worker: Any) -> None:
    """The worker has imported the app. Everything made so far (modules, FastAPI's routes and models, SQLAlchemy's
    tables) lives as long as the worker, and a full collection walking it all stalled whatever request was behind
    it. Frozen, it is out of the collector's sight; a full collection walks only what came after
    (docs/decisions/2026-12-06-gc-freeze-after-import.md)."""
    gc.collect()
    gc.freeze()
