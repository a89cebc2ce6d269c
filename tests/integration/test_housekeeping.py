"""Housekeeping on every SQL database: what is kept only for a while goes on time, and nothing younger does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from shop.bootstrap import build_commerce, build_users_store, build_web_sessions
from shop.config import Settings
from shop.infrastructure.db.engines import Databases
from shop.infrastructure.db.main.outbox import SqlOutbox
from shop.infrastructure.db.main.tables import outbox, web_sessions
from shop.services.housekeeping import Housekeeping
from shop.services.web_sessions import session_key

NOW = datetime.now(UTC)


async def test_old_sessions_and_delivered_mail_are_purged_once_an_hour(empty_settings: Settings,
                                                                       databases: Databases) -> None:
    main = databases.store("main")
    sessions = build_web_sessions(databases)
    current_id, _ = await sessions.start(cart_id="kept")
    stale_id, _ = await sessions.start(cart_id="stale")
    async with main.write() as conn:
        stale_key = session_key(stale_id)
        await conn.execute(update(web_sessions).where(web_sessions.c.key == stale_key)
                           .values(expires_at=NOW - timedelta(minutes=1)))
        for age, column in ((timedelta(days=8), "sent_at"), (timedelta(days=1), "sent_at"),
                            (timedelta(days=31), "dead_at"), (timedelta(days=8), "dead_at")):
            await conn.execute(insert(outbox).values(kind="email", payload={"age_days": age.days, "col": column},
                                                     created_at=NOW - age, available_at=NOW - age, attempts=1,
                                                     **{column: NOW - age}))
        await conn.execute(insert(outbox).values(kind="email", payload={"pending": True}, created_at=NOW,
                                                 available_at=NOW, attempts=0))
    housekeeping = Housekeeping(sessions=sessions, phone_codes=build_users_store(databases).phone_codes,
                                outbox=SqlOutbox(main),
                                idempotency=build_commerce(empty_settings, databases).idempotency)
    assert await housekeeping.run_once() >= 3
    assert await housekeeping.run_once() == 0  # not again within the hour
    assert (await sessions.load(current_id)) is not None and (await sessions.load(stale_id)) is None
    async with main.read() as conn:
        left = [row.payload for row in await conn.execute(select(outbox.c.payload))]
    assert {"pending": True} in left
    assert {"age_days": 1, "col": "sent_at"} in left and {"age_days": 8, "col": "dead_at"} in left
    assert {"age_days": 8, "col": "sent_at"} not in left and {"age_days": 31, "col": "dead_at"} not in left
