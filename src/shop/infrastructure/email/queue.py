"""MailQueue over the main store's outbox: each e-mail queued in a short transaction of its own."""

from __future__ import annotations

from shop.domain.messages import Email
from shop.infrastructure.db.main.outbox import SqlOutbox
from shop.services.email_delivery import queue_email


class OutboxMailQueue:
    def __init__(self, outbox: SqlOutbox) -> None:
        self._outbox = outbox

    async def queue(self, email: Email) -> None:
        async with self._outbox.transaction() as transaction:
            await queue_email(transaction, email)
