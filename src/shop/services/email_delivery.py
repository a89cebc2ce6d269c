"""E-mail: queue it inside the caller's transaction, deliver it later with back-off, never lose one.

A use case that sends mail (registration, password reset, order confirmation) renders it with `MailTemplates`
and calls `queue_email(uow.outbox, email)` before it commits; `deliver_due` (run by `shop worker`) sends what is
due through a `MailSender`. Nothing here logs or raises with a message body: bodies carry tokens.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from shop.domain.errors import InvalidValue
from shop.domain.messages import Email
from shop.services.outbox import Outbox, OutboxJob, OutboxWriter, RetryPolicy, short_error

EMAIL = "email"  # the outbox kind of e-mail jobs
Outcome = Literal["sent", "retried", "dead"]
log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """A send that did not happen. `permanent` means trying again cannot help (e.g. the recipient does not
    exist); otherwise the outbox retries later. `reason` is short and holds no secret: it is stored and logged."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = short_error(reason)
        self.permanent = permanent


class MailSender(Protocol):
    async def send(self, email: Email) -> None:
        """Hand the e-mail to the mail system; raise DeliveryFailed if it was not accepted."""
        ...


class MailTemplates(Protocol):
    def render(self, template: str, /, *, to: str | Sequence[str], reply_to: str | None = None,
               **context: object) -> Email:
        """The e-mail `template` (e.g. "verify-email") for `to`, filled in from `context` (e.g. `link`)."""
        ...


async def queue_email(outbox: OutboxWriter, email: Email, *, available_at: datetime | None = None) -> int:
    """Queue an e-mail in the caller's transaction; it is sent only if that transaction commits."""
    return await outbox.add(EMAIL, email.to_payload(), available_at=available_at)


@dataclass(slots=True)
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    released: int = 0

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


async def deliver_due(*, outbox: Outbox, sender: MailSender, now: Callable[[], datetime],
                      policy: RetryPolicy = RetryPolicy(), limit: int = 20, lease: timedelta = timedelta(seconds=60),
                      send_time: timedelta = timedelta(seconds=30),
                      rand: Callable[[], float] = random.random) -> DeliveryReport:
    """Send up to `limit` due e-mails, one after another; a failure is retried later or, past the policy, dead.

    `send_time` bounds one send (a send still going then is cut off and retried later): a job whose lease would
    run out before its send could end is handed back unattempted, so no other worker can claim a job while it is
    being sent. A send cut off or not recorded (the store went away) may have reached the server: delivery is at
    least once.
    """
    report = DeliveryReport()
    jobs = await outbox.claim_due(EMAIL, now=now(), limit=limit, lease=lease)
    report.claimed = len(jobs)
    for job in jobs:
        if now() + send_time >= job.claimed_until:
            await outbox.release(job, now=now())
            report.released += 1
            continue
        outcome = await _deliver_one(job, outbox=outbox, sender=sender, now=now, policy=policy, rand=rand,
                                     send_time=send_time)
        report.add(outcome)
    return report


async def _deliver_one(job: OutboxJob, *, outbox: Outbox, sender: MailSender, now: Callable[[], datetime],
                       policy: RetryPolicy, rand: Callable[[], float], send_time: timedelta) -> Outcome:
    try:
        email = Email.from_payload(job.payload)
    except InvalidValue as exc:
        # a row that can never become an e-mail: keep it, with why, for a person to look at
        await outbox.mark_dead(job, error=f"unreadable e-mail: {exc}", now=now())
        log.error("outbox job %s: unreadable e-mail, given up", job.id)
        return "dead"
    try:
        async with asyncio.timeout(send_time.total_seconds()):
            await sender.send(email)
    except DeliveryFailed as exc:
        return await _failed(job, exc.reason, permanent=exc.permanent, outbox=outbox, now=now, policy=policy,
                             rand=rand)
    except TimeoutError:
        return await _failed(job, f"no answer within {send_time.total_seconds():g} s", permanent=False,
                             outbox=outbox, now=now, policy=policy, rand=rand)
    except Exception as exc:  # a sender bug must not strand the job under its lease; its message may hold secrets
        return await _failed(job, f"unexpected {type(exc).__name__}", permanent=False, outbox=outbox, now=now,
                             policy=policy, rand=rand)
    await outbox.mark_sent(job, now=now())
    return "sent"


async def _failed(job: OutboxJob, reason: str, *, permanent: bool, outbox: Outbox, now: Callable[[], datetime],
                  policy: RetryPolicy, rand: Callable[[], float]) -> Outcome:
    if permanent or policy.gives_up_after(job.attempts):
        why = "permanent failure" if permanent else f"{job.attempts} attempts"
        await outbox.mark_dead(job, error=short_error(reason), now=now())
        log.error("outbox job %s: e-mail given up after %s: %s", job.id, why, reason)
        return "dead"
    retry_at = now() + policy.delay(job.attempts, rand=rand)
    await outbox.mark_failed(job, error=short_error(reason), retry_at=retry_at)
    log.warning("outbox job %s: e-mail attempt %s failed, retry at %s: %s", job.id, job.attempts,
                retry_at.isoformat(timespec="seconds"), reason)
    return "retried"
