"""Running wrk and reading its report."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONNECTIONS = 32
THREADS = 2
TIMEOUT_S = 2  # wrk's own per-request timeout; a slower answer counts as a socket timeout error
_SPARE_S = 30  # how long past its duration a wrk run may take before it is killed

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_LATENCY_LINE = re.compile(r"^\s*Latency\s+(?P<avg>\S+)\s+(?P<stdev>\S+)\s+(?P<max>\S+)\s+\S+\s*$",
                           re.MULTILINE)
_PERCENTILE = re.compile(r"^\s*(?P<pct>\d+(?:\.\d+)?)%\s+(?P<value>\d+(?:\.\d+)?(?:us|ms|s|m|h))\s*$",
                         re.MULTILINE)
_TOTALS = re.compile(r"^\s*(?P<requests>\d+) requests in (?P<duration>\S+),", re.MULTILINE)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (?P<connect>\d+), read (?P<read>\d+), "
                            r"write (?P<write>\d+), timeout (?P<timeout>\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (?P<count>\d+)")
_RPS = re.compile(r"^Requests/sec:\s+(?P<rps>\d+(?:\.\d+)?)", re.MULTILINE)


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed something that is not a report."""


def require_wrk() -> str:
    """The path of wrk, or WrkError with a one-line hint."""
    path = shutil.which("wrk")
    if path is None:
        raise WrkError("wrk is not installed; install it with `apt-get install wrk` (Debian) and run again")
    return path


def wrk_version(wrk: str) -> str:
    result = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10, check=False)
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def to_ms(value: str) -> float:
    """A wrk duration such as `812.00us`, `3.41ms` or `1.02s` in milliseconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", value.strip())
    if match is None:
        raise WrkError(f"cannot read the duration {value!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    duration_s: float
    requests_per_sec: float
    latency_ms: dict[str, float]  # avg, stdev, max and the percentiles p50, p75, p90, p99
    non_2xx: int  # wrk counts every status of 400 or more here (it prints "Non-2xx or 3xx responses")
    socket_errors: dict[str, int] = field(default_factory=dict)  # connect, read, write, timeout

    @property
    def p50_ms(self) -> float:
        return self.latency_ms["p50"]

    @property
    def p99_ms(self) -> float:
        return self.latency_ms["p99"]

    @property
    def socket_error_total(self) -> int:
        return sum(self.socket_errors.values())

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_error_total

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse(report: str) -> WrkResult:
    """Read wrk's text report (run with --latency)."""
    rps = _RPS.search(report)
    totals = _TOTALS.search(report)
    if rps is None or totals is None:
        raise WrkError("wrk printed no Requests/sec line; is this a wrk report?")
    latency: dict[str, float] = {}
    line = _LATENCY_LINE.search(report)
    if line is not None:
        latency.update({name: to_ms(line.group(name)) for name in ("avg", "stdev", "max")})
    for match in _PERCENTILE.finditer(report):
        latency[f"p{match.group('pct').removesuffix('.0')}"] = to_ms(match.group("value"))
    if "p50" not in latency or "p99" not in latency:
        raise WrkError("wrk printed no latency distribution; was it run with --latency?")
    sockets = _SOCKET_ERRORS.search(report)
    socket_errors = {k: int(v) for k, v in sockets.groupdict().items()} if sockets else {
        "connect": 0, "read": 0, "write": 0, "timeout": 0}
    non_2xx = _NON_2XX.search(report)
    return WrkResult(
        requests=int(totals.group("requests")),
        duration_s=to_ms(totals.group("duration")) / 1000,
        requests_per_sec=float(rps.group("rps")),
        latency_ms=latency,
        non_2xx=int(non_2xx.group("count")) if non_2xx else 0,
        socket_errors=socket_errors,
    )


def run(wrk: str, url: str, *, duration_s: int, script: Path | None = None, script_args: Sequence[str] = (),
        connections: int = CONNECTIONS, threads: int = THREADS) -> tuple[WrkResult, str]:
    """Load `url` for `duration_s` seconds; the parsed figures and wrk's own report."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise WrkError(f"refusing to load {url}: benchmarks only target this machine")
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", f"--timeout={TIMEOUT_S}s",
            "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + _SPARE_S,
                              check=False)
    except subprocess.TimeoutExpired:
        raise WrkError(f"wrk did not finish within {duration_s + _SPARE_S}s") from None
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise WrkError(f"wrk exited with {done.returncode}: {reason[-1] if reason else 'no message'}")
    return parse(done.stdout), done.stdout
