"""The request log's file copy: `{var}/log/requests-YYYY-MM-DD.log` (the UTC day of each request).

JSON lines by default; `markdown=True` writes a Markdown table instead, its header row written once when the
file is new. Every worker appends to the same file: it is opened with O_APPEND and each batch goes out in one
write call, so lines of different workers never interleave. A new Markdown file is made complete with its header
elsewhere and linked into place, so no worker's rows can land above the header.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import orjson

from shop.services.request_log import RequestRecord

_NAME = re.compile(r"^requests-(\d{4}-\d{2}-\d{2})\.log$")
_COLUMNS = ("at", "id", "method", "path", "route", "query", "status", "ms", "bytes in", "bytes out", "client",
            "user", "pid", "pool", "user agent", "details")
MARKDOWN_HEADER = ("| " + " | ".join(_COLUMNS) + " |\n" + "|" + "---|" * len(_COLUMNS) + "\n").encode()


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def json_line(record: RequestRecord) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def markdown_row(record: RequestRecord) -> bytes:
    cells = (record.at.isoformat(timespec="milliseconds"), record.id, record.method, record.path, record.route,
             record.query, record.status, f"{record.duration_ms:.2f}", record.bytes_in, record.bytes_out,
             record.client_ip, record.user_id, record.worker_pid, record.pool, record.user_agent,
             orjson.dumps(record.details).decode())
    return ("| " + " | ".join(_cell(c) for c in cells) + " |\n").encode()


class RequestLogFiles:
    """`RequestLogFile` over one directory."""

    def __init__(self, directory: Path, *, markdown: bool = False) -> None:
        self.directory = directory
        self.markdown = markdown
        self._line = markdown_row if markdown else json_line

    def path_for(self, day: date | str) -> Path:
        return self.directory / f"requests-{day if isinstance(day, str) else day.isoformat()}.log"

    def append(self, records: Sequence[RequestRecord]) -> None:
        days: dict[date, list[bytes]] = {}
        line = self._line
        for record in records:
            # the date itself as the key: formatting it per record (strftime) cost as much as the line
            days.setdefault(record.at.date(), []).append(line(record))
        for day, lines in days.items():
            self._write(self.path_for(day), b"".join(lines))

    def _write(self, path: Path, data: bytes) -> None:
        if not path.exists():
            self._create(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def _create(self, path: Path) -> None:
        """The new day's file, with the Markdown header when there is one, appearing whole or not at all."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.markdown:
            return
        draft = path.with_name(f".{path.name}.{os.getpid()}.new")
        draft.write_bytes(MARKDOWN_HEADER)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another worker made it first
        finally:
            draft.unlink(missing_ok=True)

    def purge(self, *, before: date) -> int:
        gone = 0
        if not self.directory.is_dir():
            return 0
        for path in self.directory.iterdir():
            match = _NAME.match(path.name)
            if match and match.group(1) < before.isoformat():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    gone += 1
        return gone
