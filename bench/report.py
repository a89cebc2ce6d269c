"""What a benchmark run found: the figures, the spec's floors and verdicts, as a table and as JSON."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.wrk import WrkResult

BASELINE = "bare"
P99_LIMIT_MS = 25.0
# the spec's floors: req/s of a catalogue run as a share of the bare ASGI app's, by response cache off/on
RATIO_FLOORS = {False: 0.15, True: 0.50}
CATALOGUE_TARGETS = ("list", "detail")


@dataclass(slots=True)
class Run:
    """One measured target on one server configuration."""

    target: str  # bare, hello, items, list, detail
    label: str
    path: str
    response_cache: bool | None = None  # None for the reference apps, which have none
    result: WrkResult | None = None
    error: str | None = None
    wrk_report: str = ""
    server: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, Any] = field(default_factory=dict)  # bench.cpu.CpuMeter's account of the measured run
    # with several rounds: `result`, `wrk_report` and `cpu` are the median round's; each round's figures, and
    # the medians the verdicts use (the ratio to the bare app measured in the same round)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    ratio_median: float | None = None
    p99_median_ms: float | None = None
    errors_total: int | None = None

    @property
    def key(self) -> str:
        if self.response_cache is None:
            return self.target
        return f"{self.target}-cache-{'on' if self.response_cache else 'off'}"

    @property
    def is_catalogue(self) -> bool:
        return self.target in CATALOGUE_TARGETS


@dataclass(frozen=True, slots=True)
class Verdict:
    run: str
    check: str  # ratio, p99, errors
    value: float | None
    limit: float
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run, "check": self.check, "value": self.value, "limit": self.limit,
                "passed": self.passed}


def baseline_rps(runs: list[Run]) -> float | None:
    for run in runs:
        if run.target == BASELINE and run.result is not None and run.result.requests_per_sec > 0:
            return run.result.requests_per_sec
    return None


def ratio(run: Run, baseline: float | None) -> float | None:
    if run.ratio_median is not None:
        return run.ratio_median
    if run.result is None or baseline is None:
        return None
    return run.result.requests_per_sec / baseline


def p99_ms(run: Run) -> float | None:
    if run.p99_median_ms is not None:
        return run.p99_median_ms
    return run.result.p99_ms if run.result else None


def verdicts(runs: list[Run]) -> list[Verdict]:
    """For every catalogue run: its req/s ratio to bare against its floor, p99 under 25 ms, and no errors.

    A run that failed, or whose baseline is missing, fails every check it cannot be measured for.
    """
    baseline = baseline_rps(runs)
    found: list[Verdict] = []
    for run in runs:
        if not run.is_catalogue or run.response_cache is None:
            continue
        floor = RATIO_FLOORS[run.response_cache]
        share = ratio(run, baseline)
        found.append(Verdict(run.key, "ratio", share, floor, share is not None and share >= floor))
        p99 = p99_ms(run)
        found.append(Verdict(run.key, "p99_ms", p99, P99_LIMIT_MS, p99 is not None and p99 < P99_LIMIT_MS))
        errors = float(run.errors_total if run.errors_total is not None else run.result.errors) \
            if run.result and run.error is None else None  # a round that could not be measured fails it too
        found.append(Verdict(run.key, "errors", errors, 0, errors == 0))
    return found


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _mark(passed: bool) -> str:
    return "[green]PASS[/]" if passed else "[bold red]FAIL[/]"


def table(runs: list[Run], found: list[Verdict]) -> Table:
    baseline = baseline_rps(runs)
    by_run: dict[str, dict[str, Verdict]] = {}
    for check in found:
        by_run.setdefault(check.run, {})[check.check] = check
    rounds = max((len(run.rounds) for run in runs), default=0)
    title = "catalogue benchmark: wrk -t2 -c32, 2 workers" + (
        f"; median of {rounds} interleaved rounds (ratio: median, lowest-highest; p99: median)" if rounds > 1 else "")
    grid = Table(title=title, title_justify="left")
    for name in ("target", "cache", "req/s", "p50 ms", "p99 ms", "ratio", "non-2xx", "sock err", "other CPU"):
        grid.add_column(name, justify="left" if name in ("target", "cache") else "right")
    grid.add_column("floor")
    grid.add_column("verdict")
    for run in runs:
        cache = "-" if run.response_cache is None else ("on" if run.response_cache else "off")
        result = run.result
        share = ratio(run, baseline)
        checks = by_run.get(run.key, {})
        floor = verdict = ""
        if checks:
            floor = f"ratio ≥ {RATIO_FLOORS[bool(run.response_cache)]:.2f}, p99 < {P99_LIMIT_MS:.0f}"
            failed = [name for name, one in checks.items() if not one.passed]
            verdict = _mark(not failed) + (f" ({', '.join(failed)})" if failed else "")
        if result is None:
            grid.add_row(run.label, cache, "-", "-", "-", "-", "-", "-", "-", floor,
                         verdict + f" [red]{run.error or 'not run'}[/]")
            continue
        shown = "-" if share is None else f"{share:.2f}"
        if share is not None and len(run.rounds) > 1:
            ratios = [r["ratio_to_bare"] for r in run.rounds if r.get("ratio_to_bare") is not None]
            shown += f" ({min(ratios):.2f}-{max(ratios):.2f})" if ratios else ""
        grid.add_row(run.label, cache, f"{result.requests_per_sec:,.0f}", _ms(result.p50_ms),
                     _ms(p99_ms(run)), shown, str(result.non_2xx),
                     str(result.socket_error_total), _share(run.cpu.get("share", {}).get("other")), floor,
                     verdict)
    return grid


def print_table(console: Console, runs: list[Run], found: list[Verdict]) -> None:
    console.print(table(runs, found))
    passed = all(v.passed for v in found) and bool(found)
    console.print(f"floors: {'[green]all PASS[/]' if passed else '[bold red]FAIL[/]'} "
                  f"({sum(v.passed for v in found)}/{len(found)} checks)")


# ---- machine ----------------------------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10,
                              check=False)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def machine(repo: Path) -> dict[str, Any]:
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "git_commit": _git(repo, "rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---- JSON -------------------------------------------------------------------------------------------------

def run_dict(run: Run, baseline: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": run.key, "target": run.target, "label": run.label, "path": run.path,
        "response_cache": run.response_cache, "error": run.error,
    }
    if run.result is not None:
        out.update(run.result.as_dict())
        out["p50_ms"] = run.result.p50_ms
        out["p99_ms"] = run.result.p99_ms
        out["socket_error_total"] = run.result.socket_error_total
    share = ratio(run, baseline)
    out["ratio_to_bare"] = None if share is None else round(share, 4)
    if run.rounds:
        out["rounds"] = run.rounds
        out["p99_median_ms"] = run.p99_median_ms
        out["errors_total"] = run.errors_total
    out["server"] = run.server
    out["cpu"] = run.cpu
    out["wrk_report"] = run.wrk_report
    return out


def document(*, meta: dict[str, Any], runs: list[Run], found: list[Verdict]) -> dict[str, Any]:
    baseline = baseline_rps(runs)
    return {
        **meta,
        "baseline": {"target": BASELINE, "requests_per_sec": baseline},
        "runs": [run_dict(run, baseline) for run in runs],
        "floors": {
            "ratio_to_bare": {"response_cache_off": RATIO_FLOORS[False],
                              "response_cache_on": RATIO_FLOORS[True]},
            "p99_ms_below": P99_LIMIT_MS,
            "errors": 0,
            "applies_to": list(CATALOGUE_TARGETS),
        },
        "verdicts": [v.as_dict() for v in found],
        "passed": bool(found) and all(v.passed for v in found),
    }


def save(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
