"""Payment gateway events in the main store: each is applied once, however often it is delivered."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from shop.infrastructure.db.main.tables import payment_events

if TYPE_CHECKING:
    from shop.infrastructure.db.main.dialects import MainDialect


class PaymentEventRows:
    """PaymentEventLog inside a unit of work's transaction."""

    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: AsyncConnection, dialect: MainDialect) -> None:
        self._conn = conn
        self._dialect = dialect

    async def first_time(self, provider: str, event_id: str, *, now: datetime) -> bool:
        result = await self._conn.execute(self._dialect.insert_ignoring(payment_events).values(
            provider=provider, event_id=event_id[:255], received_at=now))
        return bool(result.rowcount == 1)
