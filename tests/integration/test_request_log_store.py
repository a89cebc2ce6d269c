"""The request log's adapters on every SQL database and on disk: batches, a repeated id, files per day, retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from shop.bootstrap import build_commerce, build_users_store, build_web_sessions
from shop.config import Settings
from shop.infrastructure.db.engines import Databases
from shop.infrastructure.db.main.outbox import SqlOutbox
from shop.infrastructure.db.main.request_log import SqlRequestLogStore
from shop.infrastructure.db.main.tables import request_log
from shop.infrastructure.request_log_file import MARKDOWN_HEADER, RequestLogFiles
from shop.services.housekeeping import Housekeeping
from shop.services.request_log import RequestLogRetention, RequestRecord

NOW = datetime.now(UTC).replace(microsecond=0)


def record(n: int, *, at: datetime = NOW, **changes: object) -> RequestRecord:
    values: dict[str, object] = dict(
        id=f"{n:032x}", at=at, method="POST", path="/api/v1/auth/login", route="/api/v1/auth/login",
        query="next=%2F&token=[redacted]", status=401, duration_ms=12.345, bytes_in=40, bytes_out=109,
        client_ip="203.0.113.9", user_agent="curl/8 | pipe", user_id="u-1", worker_pid=4242, pool="api",
        details={"request_headers": {"authorization": "[redacted]"}, "body": {"password": "[redacted]"}})
    values.update(changes)
    return RequestRecord(**values)  # type: ignore[arg-type]


async def test_a_batch_is_stored_whole_and_reads_back_as_written(databases: Databases) -> None:
    store = SqlRequestLogStore(databases.store("main"))
    assert await store.add([record(n) for n in range(500)]) == 0
    async with databases.store("main").read() as conn:
        assert (await conn.execute(select(func.count()).select_from(request_log))).scalar_one() == 500
        row = (await conn.execute(select(request_log).where(request_log.c.id == f"{7:032x}"))).one()
    assert row.at == NOW and row.status == 401 and row.duration_ms == 12.345 and row.bytes_in == 40
    assert row.route == "/api/v1/auth/login" and row.client_ip == "203.0.113.9" and row.user_id == "u-1"
    assert row.worker_pid == 4242 and row.pool == "api"
    assert row.details == {"request_headers": {"authorization": "[redacted]"}, "body": {"password": "[redacted]"}}


async def test_a_repeated_id_costs_only_its_own_row_and_long_values_are_cut(databases: Databases) -> None:
    store = SqlRequestLogStore(databases.store("main"))
    await store.add([record(1)])
    batch = [record(2), record(1), record(3, user_agent="x" * 2000, path="/" + "p" * 3000)]
    assert await store.add(batch) == 1
    async with databases.store("main").read() as conn:
        rows = {r.id: r for r in await conn.execute(select(request_log))}
    assert sorted(rows) == [f"{n:032x}" for n in (1, 2, 3)]
    assert len(rows[f"{3:032x}"].user_agent) == 512 and len(rows[f"{3:032x}"].path) == 1024


async def test_old_requests_go_from_the_store_and_the_files(empty_settings: Settings, databases: Databases,
                                                            tmp_path: Path) -> None:
    main = databases.store("main")
    store = SqlRequestLogStore(main)
    files = RequestLogFiles(tmp_path / "log")
    old, recent = NOW - timedelta(days=31), NOW - timedelta(days=29)
    await store.add([record(1, at=old), record(2, at=recent), record(3)])
    files.append([record(1, at=old), record(2, at=recent), record(3)])
    assert len(list((tmp_path / "log").iterdir())) == 3
    housekeeping = Housekeeping(sessions=build_web_sessions(databases),
                                phone_codes=build_users_store(databases).phone_codes, outbox=SqlOutbox(main),
                                idempotency=build_commerce(empty_settings, databases).idempotency,
                                request_log=RequestLogRetention(store=store, file=files, keep=timedelta(days=30)))
    assert await housekeeping.run_once() >= 2
    async with main.read() as conn:
        left = sorted(r.id for r in await conn.execute(select(request_log.c.id)))
    assert left == [f"{2:032x}", f"{3:032x}"]
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == sorted(
        f"requests-{d:%Y-%m-%d}.log" for d in (recent, NOW))


def test_json_lines_go_to_the_file_of_each_records_utc_day(tmp_path: Path) -> None:
    files = RequestLogFiles(tmp_path)
    yesterday = NOW - timedelta(days=1)
    files.append([record(1, at=yesterday), record(2)])
    files.append([record(3)])
    today = [json.loads(line) for line in files.path_for(NOW.date()).read_text().splitlines()]
    assert [r["id"] for r in today] == [f"{2:032x}", f"{3:032x}"]
    assert today[0]["status"] == 401 and today[0]["details"]["body"] == {"password": "[redacted]"}
    assert datetime.fromisoformat(today[0]["at"]) == NOW
    assert json.loads(files.path_for(yesterday.date()).read_text())["id"] == f"{1:032x}"


def test_markdown_has_one_header_however_many_workers_append(tmp_path: Path) -> None:
    first, second = RequestLogFiles(tmp_path, markdown=True), RequestLogFiles(tmp_path, markdown=True)
    first.append([record(1)])
    second.append([record(2)])
    first.append([record(3, path="/a|b\nc")])
    text = first.path_for(NOW.date()).read_text()
    lines = text.splitlines()
    assert text.startswith(MARKDOWN_HEADER.decode()) and text.count("| at | id |") == 1
    assert len(lines) == 5 and lines[1].startswith("|---|")
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines[:1] + lines[2:])
    assert "curl/8 \\| pipe" in lines[2] and "/a\\|b c" in lines[4]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no draft left behind
