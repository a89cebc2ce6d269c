"""nginx in front of the pools: its generated configuration, and nginx itself as a child of `shop serve`."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shop.runtime.children import spawn

DEBIAN_NGINX = Path("/usr/sbin/nginx")  # not on a normal user's PATH
# the upstream connection nginx keeps must close before uvicorn's (gunicorn keepalive = 5 s), or a request can
# go out on a connection the worker is closing at that moment
UPSTREAM_KEEPALIVE_S = 4
CONNECT_TIMEOUT_S = 1  # a local socket answers at once; anything slower is a dead or stuck server
MAIN_MAX_FAILS = 1
MAIN_FAIL_TIMEOUT_S = 3  # after a failure the backup serves this long before Main is tried again
STOP_TIMEOUT_S = 15.0
_TYPES = {"css": "text/css", "js": "text/javascript", "mjs": "text/javascript", "svg": "image/svg+xml",
          "png": "image/png", "jpg": "image/jpeg", "webp": "image/webp", "woff2": "font/woff2",
          "ico": "image/x-icon", "json": "application/json", "txt": "text/plain"}
_UNSAFE = set(" \t\n;{}'\"\\$#")  # what cannot appear bare in an nginx argument


class NginxError(RuntimeError):
    """nginx is missing, its configuration is refused, or it stopped; the message is one line."""


@dataclass(frozen=True, slots=True)
class StaticFile:
    url: str  # e.g. /static/css/shop.3f2a1b9c0d.css
    file: Path
    immutable: bool  # a content-hashed name: cached for a year


@dataclass(frozen=True, slots=True)
class Upstream:
    pool: str
    socket: Path  # the pool's gunicorn
    prefixes: tuple[str, ...]
    backup: str | None = None
    main_down: bool = False  # Main failed /readyz: everything goes to the backup until it answers again


@dataclass(frozen=True, slots=True)
class NginxFiles:
    """Everything nginx writes, under one directory (var/nginx by default)."""

    directory: Path

    @classmethod
    def under(cls, directory: Path) -> NginxFiles:
        return cls(directory.resolve())

    @property
    def conf(self) -> Path:
        return self.directory / "nginx.conf"

    @property
    def pid(self) -> Path:
        return self.directory / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    @property
    def access_log(self) -> Path:
        return self.directory / "access.log"

    @property
    def temp(self) -> Path:
        return self.directory / "temp"


def find_nginx(explicit: str | None = None) -> str:
    """The nginx binary: `explicit`, else `nginx` on PATH, else Debian's /usr/sbin/nginx."""
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return explicit
        raise NginxError(f"nginx is not at {explicit}; install it (Debian: apt-get install nginx) or name "
                         "another binary with --nginx")
    found = shutil.which("nginx") or (str(DEBIAN_NGINX) if os.access(DEBIAN_NGINX, os.X_OK) else None)
    if found is None:
        raise NginxError("nginx is not installed (looked for `nginx` on PATH and /usr/sbin/nginx); "
                         "install Debian's package with `apt-get install nginx`, or name it with --nginx")
    return found


def _arg(value: str | Path) -> str:
    text = str(value)
    if not text or _UNSAFE & set(text):
        raise NginxError(f"{text!r} cannot go into nginx's configuration (spaces, quotes, ; {{ }} $ or #)")
    return text


MAIN_PEERS = 4


def _upstream(up: Upstream) -> list[str]:
    main = f"server unix:{_arg(up.socket)}"
    if up.backup:
        # a failed Main is skipped for a while (nginx counts max_fails only when it has another server)
        main += " down" if up.main_down else f" max_fails={MAIN_MAX_FAILS} fail_timeout={MAIN_FAIL_TIMEOUT_S}s"
    else:
        main += " max_fails=0"
    # Main several times over. When an old worker leaves (SIGHUP reload, recycling) it closes its idle kept-alive
    # connections, and a request nginx sends on one in that instant fails; nginx retries an idempotent request,
    # but only on a peer it has not tried yet, and each try may take another of the dying cached connections.
    # Listing the socket MAIN_PEERS times gives a request that many connections to find a live one.
    lines = [f"    upstream pool_{up.pool} {{", *[f"        {main};"] * MAIN_PEERS]
    if up.backup:
        lines.append(f"        server {_arg(up.backup)} backup;")
    lines += ["        keepalive 32;", f"        keepalive_timeout {UPSTREAM_KEEPALIVE_S}s;", "    }"]
    return lines


def _locations(up: Upstream) -> list[str]:
    proxy = f"proxy_pass http://pool_{up.pool};"
    lines: list[str] = []
    for prefix in up.prefixes:
        if prefix == "/":
            lines.append(f"        location / {{ {proxy} }}")
        else:
            # whole path segments only: /admin and /admin/… but not /administrator
            lines.append(f"        location = {_arg(prefix)} {{ {proxy} }}")
            lines.append(f"        location ^~ {_arg(prefix)}/ {{ {proxy} }}")
    return lines


def _static(files: Sequence[StaticFile]) -> list[str]:
    lines: list[str] = []
    for item in files:
        cache = "public, max-age=31536000, immutable" if item.immutable else "public, max-age=300"
        lines += [f"        location = {_arg(item.url)} {{",
                  f"            alias {_arg(item.file)};",
                  f'            add_header Cache-Control "{cache}";',
                  "            add_header X-Content-Type-Options nosniff;",
                  "        }"]
    # anything else under /static/ is not a file of the shop
    lines.append("        location ^~ /static/ { return 404; }")
    return lines


def render(*, listen: str, upstreams: Sequence[Upstream], static_files: Sequence[StaticFile],
           files: NginxFiles, user: str | None = None) -> str:
    """The whole nginx.conf: one upstream per pool, locations by prefix (longest wins), static files served here."""
    temp = files.temp
    types = " ".join(f"{mime} {ext};" for ext, mime in _TYPES.items())
    lines = [
        "# generated by `shop serve --pools`; edits are lost on the next start or health change",
        *([f"user {_arg(user)};"] if user else []),
        "daemon off;",
        "worker_processes auto;",
        f"pid {_arg(files.pid)};",
        f"error_log {_arg(files.error_log)} warn;",
        "events { worker_connections 4096; }",
        "http {",
        f"    types {{ {types} }}",
        "    default_type application/octet-stream;",
        "    log_format shop '$time_iso8601 $remote_addr \"$request\" $status $body_bytes_sent '",
        "                    '$request_time upstream=$upstream_addr upstream_status=$upstream_status '",
        "                    'request_id=$request_id';",
        f"    access_log {_arg(files.access_log)} shop;",
        *(f"    {kind}_temp_path {_arg(temp / kind)};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                     "scgi")),
        "    sendfile on;",
        "    tcp_nopush on;",
        "    server_tokens off;",
        "    keepalive_timeout 65s;",
        "    client_max_body_size 20m;",
        '    map $http_host $shop_host { "" $host; default $http_host; }',
    ]
    for up in upstreams:
        lines += _upstream(up)
    lines += [
        "    server {",
        f"        listen {_arg(listen)};",
        "        server_name _;",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $shop_host;",
        # nginx is the edge: the client's address replaces whatever it claimed
        "        proxy_set_header X-Forwarded-For $remote_addr;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_set_header X-Request-ID $request_id;",
        f"        proxy_connect_timeout {CONNECT_TIMEOUT_S}s;",
        "        proxy_read_timeout 60s;",
        # nginx retries only idempotent requests (non_idempotent is deliberately absent): a checkout that reached
        # Main is never sent again by nginx; the client retries it with its Idempotency-Key
        "        proxy_next_upstream error timeout http_502 http_503 http_504;",
        *_static(static_files),
    ]
    for up in upstreams:
        lines += _locations(up)
    lines += ["    }", "}"]
    return "\n".join(lines) + "\n"


def nginx_user() -> str | None:
    """Run nginx's workers as the user running `shop serve` (root would hand them to `nobody`, who cannot reach
    the pools' sockets under var/run)."""
    return pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None


class Nginx:
    """nginx as a child process in the foreground (`daemon off;`), in its own process group."""

    def __init__(self, binary: str, files: NginxFiles) -> None:
        self.binary = binary
        self.files = files
        self.process: subprocess.Popen[bytes] | None = None

    def _argv(self, *extra: str) -> list[str]:
        return [self.binary, "-p", str(self.files.directory), "-c", str(self.files.conf),
                "-e", str(self.files.error_log), *extra]

    def write(self, conf: str) -> None:
        self.files.directory.mkdir(parents=True, exist_ok=True)
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.files.temp / kind).mkdir(parents=True, exist_ok=True)
        tmp = self.files.conf.with_name(".nginx.conf.tmp")
        tmp.write_text(conf, encoding="utf-8")
        os.replace(tmp, self.files.conf)

    def check(self) -> None:
        """`nginx -t`: the generated configuration is accepted."""
        done = subprocess.run(self._argv("-t", "-q"), capture_output=True, text=True, timeout=30,  # noqa: S603
                              check=False)
        if done.returncode != 0:
            raise NginxError(f"nginx refused {self.files.conf}: {_last_line(done.stderr or done.stdout)}")

    def start(self) -> None:
        self.check()
        # tied to the supervisor's life like the pools' masters: a SIGKILLed `shop serve --pools` leaves no nginx
        self.process = spawn(self._argv(), os.environ)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reload(self) -> None:
        """New configuration, new workers; the old workers finish their requests first."""
        self.check()
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """Graceful quit (SIGQUIT), then SIGKILL to its group if it is still there."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # a worker left behind would keep the port

    def error_tail(self) -> str:
        try:
            return _last_line(self.files.error_log.read_text(errors="replace"))
        except OSError:
            return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
