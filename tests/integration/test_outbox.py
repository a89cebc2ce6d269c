"""The outbox on every database: transactional enqueue, claims that never overlap, no mail lost to an SMTP outage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, inspect, select

from shop.domain.messages import Email
from shop.infrastructure.db.engines import Databases
from shop.infrastructure.db.main.outbox import SqlOutbox
from shop.infrastructure.db.main.tables import outbox as outbox_table
from shop.infrastructure.db.main.tables import stock_levels
from shop.infrastructure.email.message import Sender
from shop.infrastructure.email.smtp import SmtpConfig, SmtpSender
from shop.services.email_delivery import EMAIL, deliver_due, queue_email
from shop.services.outbox import RetryPolicy
from tests.integration.smtp_server import free_port, smtp_server

LEASE = timedelta(seconds=60)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


class Collecting:
    def __init__(self) -> None:
        self.sent: list[Email] = []

    async def send(self, email: Email) -> None:
        self.sent.append(email)


class Boom(Exception):
    pass


def email(n: int = 1) -> Email:
    return Email(to=(f"buyer{n}@example.com",), subject=f"Order {n} — confirmed", text="Thanks ✓",
                 html="<p>Thanks ✓</p>")


async def rows(databases: Databases) -> list[dict[str, object]]:
    async with databases.store("main").read() as conn:
        result = await conn.execute(select(outbox_table).order_by(outbox_table.c.id))
        return [dict(r._mapping) for r in result]


async def queue(outbox: SqlOutbox, count: int) -> list[int]:
    async with outbox.transaction() as tx:
        return [await queue_email(tx, email(n)) for n in range(count)]


async def test_mail_queued_in_a_transaction_that_commits_is_delivered(databases: Databases) -> None:
    main = databases.store("main")
    clock = Clock()
    outbox = SqlOutbox(main, clock=clock)
    async with main.write() as conn:
        await conn.execute(insert(stock_levels).values(sku="MUG-1", on_hand=3, reserved=1, updated_at=clock()))
        await queue_email(outbox.within(conn), email())
    sender = Collecting()
    report = await deliver_due(outbox=outbox, sender=sender, now=clock)
    assert (report.claimed, report.sent) == (1, 1)
    assert sender.sent == [email()]  # the payload survives JSON on this database, accents and all
    [row] = await rows(databases)
    assert row["sent_at"] is not None and row["attempts"] == 1 and row["claim_token"] is None
    assert (await deliver_due(outbox=outbox, sender=sender, now=clock)).claimed == 0


async def test_mail_queued_in_a_transaction_that_rolls_back_is_never_sent(databases: Databases) -> None:
    main = databases.store("main")
    clock = Clock()
    outbox = SqlOutbox(main, clock=clock)

    async def order_that_fails_after_queueing_its_mail() -> None:
        async with main.write() as conn:
            await conn.execute(insert(stock_levels).values(sku="MUG-1", on_hand=3, reserved=1, updated_at=clock()))
            await queue_email(outbox.within(conn), email())
            raise Boom

    with pytest.raises(Boom):
        await order_that_fails_after_queueing_its_mail()
    clock.now += timedelta(days=1)
    sender = Collecting()
    assert (await deliver_due(outbox=outbox, sender=sender, now=clock)).claimed == 0
    assert sender.sent == [] and await rows(databases) == []


async def test_the_outbox_refuses_a_connection_to_another_database(databases: Databases, tmp_path: Path) -> None:
    elsewhere = Databases({"users": f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"})
    try:
        async with elsewhere.store("users").write() as conn:
            with pytest.raises(ValueError, match="main store"):
                SqlOutbox(databases.store("main")).within(conn)
    finally:
        await elsewhere.dispose()


async def test_a_claimer_skips_rows_another_holds_without_waiting(backend: str, databases: Databases) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: claims there never overlap")
    clock = Clock()
    outbox = SqlOutbox(databases.store("main"), clock=clock)
    ids = await queue(outbox, 10)
    engine = databases.engine("main")
    async with engine.connect() as holder, holder.begin():  # a worker mid-claim, holding the oldest five
        held = (await holder.execute(select(outbox_table.c.id).order_by(outbox_table.c.id).limit(5)
                                     .with_for_update())).scalars().all()
        async with asyncio.timeout(5):
            jobs = await outbox.claim_due(EMAIL, now=clock(), limit=10, lease=LEASE)
    assert sorted(held) == ids[:5]
    assert sorted(j.id for j in jobs) == ids[5:]


async def test_concurrent_claimers_never_get_the_same_row(databases: Databases) -> None:
    clock = Clock()
    outbox = SqlOutbox(databases.store("main"), clock=clock)
    ids = await queue(outbox, 60)
    claimed: list[list[int]] = []

    async def claimer() -> None:
        mine: list[int] = []
        while jobs := await outbox.claim_due(EMAIL, now=clock(), limit=3, lease=LEASE):
            mine.extend(j.id for j in jobs)
            await asyncio.sleep(0)
        claimed.append(mine)

    async with asyncio.timeout(60):
        await asyncio.gather(*(claimer() for _ in range(6)))
    every = [i for mine in claimed for i in mine]
    assert sorted(every) == ids  # each row once, none twice, none missed
    assert sum(1 for mine in claimed if mine) >= 2  # they really did share the work


async def test_concurrent_workers_deliver_each_mail_exactly_once(databases: Databases) -> None:
    clock = Clock()
    outbox = SqlOutbox(databases.store("main"), clock=clock)
    await queue(outbox, 40)
    sender = Collecting()

    async def worker() -> None:
        while (await deliver_due(outbox=outbox, sender=sender, now=clock, limit=4)).claimed:
            pass

    async with asyncio.timeout(60):
        await asyncio.gather(*(worker() for _ in range(4)))
    assert sorted(e.to[0] for e in sender.sent) == sorted(f"buyer{n}@example.com" for n in range(40))
    assert all(r["sent_at"] is not None for r in await rows(databases))


async def test_a_lease_that_ran_out_passes_the_job_on_and_the_late_worker_cannot_record_it(
        databases: Databases) -> None:
    clock = Clock()
    outbox = SqlOutbox(databases.store("main"), clock=clock)
    await queue(outbox, 1)
    [late] = await outbox.claim_due(EMAIL, now=clock(), limit=5, lease=LEASE)
    assert await outbox.claim_due(EMAIL, now=clock() + LEASE - timedelta(seconds=1), limit=5, lease=LEASE) == []
    clock.now += LEASE + timedelta(seconds=1)
    [fresh] = await outbox.claim_due(EMAIL, now=clock(), limit=5, lease=LEASE)
    assert (late.id, late.attempts, fresh.attempts) == (fresh.id, 1, 2)
    await outbox.mark_failed(late, error="too late", retry_at=clock() + timedelta(hours=1))  # ignored
    await outbox.mark_sent(fresh, now=clock())
    [row] = await rows(databases)
    assert row["sent_at"] is not None and row["last_error"] is None


async def test_a_released_job_is_due_again_without_counting_an_attempt(databases: Databases) -> None:
    clock = Clock()
    outbox = SqlOutbox(databases.store("main"), clock=clock)
    await queue(outbox, 1)
    [job] = await outbox.claim_due(EMAIL, now=clock(), limit=1, lease=LEASE)
    await outbox.release(job, now=clock())
    [again] = await outbox.claim_due(EMAIL, now=clock(), limit=1, lease=LEASE)
    assert (again.id, again.attempts) == (job.id, 1)


async def test_a_dead_job_is_kept_with_its_error_and_never_claimed_again(databases: Databases) -> None:
    clock = Clock()
    outbox = SqlOutbox(databases.store("main"), clock=clock)
    await queue(outbox, 1)
    [job] = await outbox.claim_due(EMAIL, now=clock(), limit=1, lease=LEASE)
    await outbox.mark_dead(job, error="550 no such user\nsecond line", now=clock())
    clock.now += timedelta(days=30)
    assert await outbox.claim_due(EMAIL, now=clock(), limit=1, lease=LEASE) == []
    [row] = await rows(databases)
    assert row["dead_at"] is not None and row["sent_at"] is None and row["last_error"] == "550 no such user second line"
    assert row["payload"] == email(0).to_payload()


async def test_an_smtp_outage_delays_mail_loses_none_and_it_goes_out_when_the_server_is_back(
        databases: Databases) -> None:
    clock = Clock()
    outbox = SqlOutbox(databases.store("main"), clock=clock)
    await queue(outbox, 3)
    port = free_port()  # nothing listens here yet: connection refused
    sender = SmtpSender(SmtpConfig("127.0.0.1", port, starttls=False, timeout=5), Sender("shop@shop.test"))
    policy = RetryPolicy(jitter=0)

    first = await deliver_due(outbox=outbox, sender=sender, now=clock, policy=policy)
    assert (first.claimed, first.retried, first.sent) == (3, 3, 0)
    stored = await rows(databases)
    assert all(r["attempts"] == 1 and r["sent_at"] is None and r["dead_at"] is None for r in stored)
    assert all(f"127.0.0.1:{port}" in str(r["last_error"]) for r in stored)
    assert (await deliver_due(outbox=outbox, sender=sender, now=clock, policy=policy)).claimed == 0  # backing off

    clock.now += timedelta(seconds=30)
    second = await deliver_due(outbox=outbox, sender=sender, now=clock, policy=policy)
    assert second.retried == 3  # still down: the wait doubles
    clock.now += timedelta(seconds=59)
    assert (await deliver_due(outbox=outbox, sender=sender, now=clock, policy=policy)).claimed == 0

    with smtp_server(port) as inbox:
        clock.now += timedelta(seconds=1)
        third = await deliver_due(outbox=outbox, sender=sender, now=clock, policy=policy)
    assert third.sent == 3
    assert sorted(r.rcpt_tos[0] for r in inbox.received) == [f"buyer{n}@example.com" for n in range(3)]
    assert all(r["sent_at"] is not None and r["attempts"] == 3 for r in await rows(databases))


async def test_the_due_index_exists(databases: Databases) -> None:
    async with databases.store("main").read() as conn:
        count = (await conn.execute(select(func.count()).select_from(outbox_table))).scalar_one()
        indexes = await conn.run_sync(lambda sync: inspect(sync).get_indexes("outbox"))
    assert count == 0
    assert any(ix["name"] == "ix_outbox_due" and ix["column_names"] == ["kind", "sent_at", "dead_at", "available_at"]
               for ix in indexes)
