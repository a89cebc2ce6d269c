"""The process board as small JSON files under one directory (var/run by default), shared by every process
of one machine. Each write goes to a temporary file renamed into place, so a reader never sees half a file."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from shop.services.process_status import PoolState, ScalingDecision, SizeRequest, WorkerBeat

STALE_AFTER = timedelta(seconds=10)  # workers beat every couple of seconds
DECISIONS_KEPT = 1000

T = TypeVar("T")


def _encode(value: object) -> dict[str, Any]:
    data = asdict(value)  # type: ignore[call-overload]
    return {k: v.isoformat() if isinstance(v, datetime) else list(v) if isinstance(v, tuple) else v
            for k, v in data.items()}


def _decode(cls: type[T], data: dict[str, Any]) -> T:
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for name, raw in data.items():
        if name not in known:
            continue
        if isinstance(raw, str) and name in ("at", "started_at", "updated_at"):
            values[name] = datetime.fromisoformat(raw)
        elif isinstance(raw, list):
            values[name] = tuple(raw)
        else:
            values[name] = raw
    return cls(**values)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


class FileProcessBoard:
    def __init__(self, run_dir: Path) -> None:
        self._dir = run_dir
        self._workers = run_dir / "workers"
        self._requests = run_dir / "scaling" / "requests"
        self._pools = run_dir / "scaling" / "pools.json"
        self._decisions = run_dir / "scaling" / "decisions.jsonl"

    def _write(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    # workers
    def beat(self, beat: WorkerBeat) -> None:
        self._write(self._workers / f"{beat.pid}.json", json.dumps(_encode(beat)))

    def forget_worker(self, pid: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self._workers / f"{pid}.json").unlink()

    def workers(self) -> list[WorkerBeat]:
        now = datetime.now(UTC)
        live: list[WorkerBeat] = []
        for path in sorted(self._workers.glob("*.json")) if self._workers.is_dir() else []:
            try:
                beat = _decode(WorkerBeat, json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                continue  # vanished or being replaced
            if now - beat.updated_at > STALE_AFTER or not _pid_alive(beat.pid):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            live.append(beat)
        return sorted(live, key=lambda b: (b.pool, b.pid))

    # pools
    def publish_pools(self, pools: Sequence[PoolState]) -> None:
        self._write(self._pools, json.dumps([_encode(p) for p in pools]))

    def pools(self) -> list[PoolState]:
        try:
            raw = json.loads(self._pools.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [_decode(PoolState, item) for item in raw]

    # decisions
    def record_decision(self, decision: ScalingDecision) -> None:
        self._decisions.parent.mkdir(parents=True, exist_ok=True)
        with self._decisions.open("a", encoding="utf-8") as out:
            out.write(json.dumps(_encode(decision)) + "\n")
        if self._decisions.stat().st_size > DECISIONS_KEPT * 400:
            lines = self._decisions.read_text(encoding="utf-8").splitlines()[-DECISIONS_KEPT:]
            self._write(self._decisions, "\n".join(lines) + "\n")

    def decisions(self, *, limit: int = 100) -> list[ScalingDecision]:
        try:
            lines = self._decisions.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        found: list[ScalingDecision] = []
        for line in reversed(lines):
            if len(found) >= limit:
                break
            with contextlib.suppress(ValueError, TypeError):
                found.append(_decode(ScalingDecision, json.loads(line)))
        return found

    # requests from staff
    def request_size(self, request: SizeRequest) -> None:
        stamp = request.at.strftime("%Y%m%dT%H%M%S%f")
        self._write(self._requests / f"{stamp}-{request.pool}.json", json.dumps(_encode(request)))

    def take_size_requests(self) -> list[SizeRequest]:
        taken: list[SizeRequest] = []
        for path in sorted(self._requests.glob("*.json")) if self._requests.is_dir() else []:
            try:
                text = path.read_text(encoding="utf-8")
                path.unlink()
            except OSError:
                continue  # taken by another reader
            with contextlib.suppress(ValueError, TypeError):
                taken.append(_decode(SizeRequest, json.loads(text)))
        return taken
