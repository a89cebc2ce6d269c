"""E-mail delivery with fakes: back-off, give-up that keeps the row, temporary vs permanent, header injection."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shop.domain.errors import InvalidValue
from shop.domain.messages import Email
from shop.services.email_delivery import EMAIL, DeliveryFailed, deliver_due, queue_email
from shop.services.outbox import OutboxJob, RetryPolicy, short_error

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NO_JITTER = lambda: 0.0  # noqa: E731


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Row:
    id: int
    kind: str
    payload: dict[str, Any]
    available_at: datetime
    attempts: int = 0
    last_error: str | None = None
    sent_at: datetime | None = None
    dead_at: datetime | None = None
    token: str | None = None
    claimed_until: datetime | None = None


class FakeOutbox:
    """The outbox table in memory: an OutboxWriter (add) and the worker's Outbox."""

    def __init__(self, clock: Clock) -> None:
        self.rows: dict[int, Row] = {}
        self.clock = clock
        self.history: list[tuple[str, int]] = []

    async def add(self, kind: str, payload: Mapping[str, Any], *, available_at: datetime | None = None) -> int:
        row = Row(len(self.rows) + 1, kind, dict(payload), available_at or self.clock())
        self.rows[row.id] = row
        return row.id

    async def claim_due(self, kind: str, *, now: datetime, limit: int, lease: timedelta) -> Sequence[OutboxJob]:
        due = [r for r in self.rows.values() if r.kind == kind and r.sent_at is None and r.dead_at is None
               and r.available_at <= now][:limit]
        for row in due:
            row.attempts += 1
            row.available_at = row.claimed_until = now + lease
            row.token = f"t{row.id}-{row.attempts}"
        return [OutboxJob(r.id, r.kind, r.payload, r.attempts, now + lease, r.token or "") for r in due]

    def _held(self, job: OutboxJob) -> Row:
        row = self.rows[job.id]
        assert row.token == job.token, "an outcome written without holding the claim"
        row.token = row.claimed_until = None
        return row

    async def mark_sent(self, job: OutboxJob, *, now: datetime) -> None:
        self._held(job).sent_at = now
        self.history.append(("sent", job.id))

    async def mark_failed(self, job: OutboxJob, *, error: str, retry_at: datetime) -> None:
        row = self._held(job)
        row.available_at, row.last_error = retry_at, error
        self.history.append(("failed", job.id))

    async def mark_dead(self, job: OutboxJob, *, error: str, now: datetime) -> None:
        row = self._held(job)
        row.dead_at, row.last_error = now, error
        self.history.append(("dead", job.id))

    async def release(self, job: OutboxJob, *, now: datetime) -> None:
        row = self._held(job)
        row.available_at, row.attempts = now, row.attempts - 1
        self.history.append(("released", job.id))


class FakeSender:
    """Accepts every e-mail, unless `failures` says what to raise next."""

    def __init__(self, *, failures: Sequence[Exception] = (), clock: Clock | None = None,
                 takes: timedelta = timedelta(0)) -> None:
        self.sent: list[Email] = []
        self.failures = list(failures)
        self.clock = clock
        self.takes = takes

    async def send(self, email: Email) -> None:
        if self.clock is not None:
            self.clock.now += self.takes
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(email)


def welcome(to: str = "ann@example.com") -> Email:
    return Email(to=(to,), subject="Welcome", text="Hello", html="<p>Hello</p>")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(clock: Clock) -> FakeOutbox:
    return FakeOutbox(clock)


async def test_a_queued_email_is_sent_once_and_kept_as_sent(outbox: FakeOutbox, clock: Clock) -> None:
    job_id = await queue_email(outbox, welcome())
    sender = FakeSender()
    report = await deliver_due(outbox=outbox, sender=sender, now=clock)
    again = await deliver_due(outbox=outbox, sender=sender, now=clock)
    assert (report.claimed, report.sent, again.claimed) == (1, 1, 0)
    assert sender.sent == [welcome()]
    assert outbox.rows[job_id].sent_at == T0 and outbox.rows[job_id].kind == EMAIL


async def test_an_email_queued_for_later_waits_until_then(outbox: FakeOutbox, clock: Clock) -> None:
    await queue_email(outbox, welcome(), available_at=T0 + timedelta(minutes=5))
    sender = FakeSender()
    assert (await deliver_due(outbox=outbox, sender=sender, now=clock)).claimed == 0
    clock.now += timedelta(minutes=5)
    assert (await deliver_due(outbox=outbox, sender=sender, now=clock)).sent == 1


def test_back_off_doubles_from_30_seconds_and_stops_at_an_hour() -> None:
    policy = RetryPolicy()
    schedule = [policy.delay(n, rand=NO_JITTER).total_seconds() for n in range(1, 11)]
    assert schedule == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert policy.delay(10_000, rand=NO_JITTER) == timedelta(hours=1)


def test_jitter_only_ever_shortens_the_wait_by_at_most_a_tenth() -> None:
    policy = RetryPolicy()
    assert policy.delay(3, rand=lambda: 0.999) > timedelta(seconds=108)
    assert policy.delay(20, rand=lambda: 0.999) <= timedelta(hours=1)


async def test_a_temporary_failure_is_retried_after_the_back_off(outbox: FakeOutbox, clock: Clock) -> None:
    job_id = await queue_email(outbox, welcome())
    sender = FakeSender(failures=[DeliveryFailed("mail server busy"), DeliveryFailed("mail server busy")])
    schedule = []
    for _ in range(3):
        report = await deliver_due(outbox=outbox, sender=sender, now=clock, rand=NO_JITTER)
        schedule.append((report.retried, report.sent, outbox.rows[job_id].available_at - clock.now))
        assert (await deliver_due(outbox=outbox, sender=sender, now=clock)).claimed == 0  # not before it is due
        clock.now = outbox.rows[job_id].available_at
    assert schedule[:2] == [(1, 0, timedelta(seconds=30)), (1, 0, timedelta(seconds=60))]
    assert schedule[2][:2] == (0, 1)
    assert len(sender.sent) == 1 and outbox.rows[job_id].attempts == 3
    assert outbox.rows[job_id].last_error == "mail server busy"


async def test_a_permanent_failure_is_not_retried_and_the_row_is_kept(outbox: FakeOutbox, clock: Clock) -> None:
    job_id = await queue_email(outbox, welcome())
    sender = FakeSender(failures=[DeliveryFailed("550 no such user", permanent=True)])
    report = await deliver_due(outbox=outbox, sender=sender, now=clock)
    clock.now += timedelta(days=1)
    later = await deliver_due(outbox=outbox, sender=sender, now=clock)
    row = outbox.rows[job_id]
    assert (report.dead, later.claimed, sender.sent) == (1, 0, [])
    assert row.dead_at == T0 and row.sent_at is None and row.last_error == "550 no such user"
    assert row.payload == welcome().to_payload()  # nothing lost: the message is still there to look at


async def test_after_the_last_attempt_the_job_is_dead_but_kept(outbox: FakeOutbox, clock: Clock) -> None:
    job_id = await queue_email(outbox, welcome())
    policy = RetryPolicy(max_attempts=4)
    sender = FakeSender(failures=[DeliveryFailed("connection refused")] * 10)
    outcomes = []
    for _ in range(6):
        report = await deliver_due(outbox=outbox, sender=sender, now=clock, policy=policy)
        outcomes.append("dead" if report.dead else "retried" if report.retried else "none")
        clock.now += timedelta(hours=2)
    row = outbox.rows[job_id]
    assert outcomes == ["retried", "retried", "retried", "dead", "none", "none"]
    assert row.attempts == 4 and row.dead_at is not None and row.payload == welcome().to_payload()


async def test_one_failing_email_does_not_hold_up_the_others(outbox: FakeOutbox, clock: Clock) -> None:
    for name in ("ann", "bob", "cy"):
        await queue_email(outbox, welcome(f"{name}@example.com"))
    sender = FakeSender(failures=[DeliveryFailed("452 mailbox full")])
    report = await deliver_due(outbox=outbox, sender=sender, now=clock)
    assert (report.retried, report.sent) == (1, 2)
    assert [e.to for e in sender.sent] == [("bob@example.com",), ("cy@example.com",)]


async def test_an_unexpected_sender_error_is_retried_and_its_message_not_kept(
        outbox: FakeOutbox, clock: Clock) -> None:
    job_id = await queue_email(outbox, welcome())
    sender = FakeSender(failures=[RuntimeError("login with password hunter2 failed")])
    report = await deliver_due(outbox=outbox, sender=sender, now=clock)
    assert report.retried == 1
    assert outbox.rows[job_id].last_error == "unexpected RuntimeError"


async def test_a_job_whose_lease_would_run_out_mid_send_is_handed_back_unattempted(
        outbox: FakeOutbox, clock: Clock) -> None:
    for name in ("ann", "bob", "cy"):
        await queue_email(outbox, welcome(f"{name}@example.com"))
    sender = FakeSender(clock=clock, takes=timedelta(seconds=20))  # each send uses a third of the lease
    report = await deliver_due(outbox=outbox, sender=sender, now=clock, lease=timedelta(seconds=60),
                               send_time=timedelta(seconds=20))
    assert (report.sent, report.released) == (2, 1)
    left = outbox.rows[3]
    assert left.attempts == 0 and left.sent_at is None and left.available_at == clock.now


async def test_a_send_that_hangs_is_cut_off_and_retried(outbox: FakeOutbox, clock: Clock) -> None:
    job_id = await queue_email(outbox, welcome())

    class Hanging:
        async def send(self, email: Email) -> None:
            await asyncio.sleep(3600)

    report = await deliver_due(outbox=outbox, sender=Hanging(), now=clock, send_time=timedelta(seconds=0.05))
    assert report.retried == 1 and outbox.rows[job_id].last_error == "no answer within 0.05 s"


async def test_a_stored_email_that_cannot_be_read_is_given_up_not_crashing_the_worker(
        outbox: FakeOutbox, clock: Clock) -> None:
    bad = await outbox.add(EMAIL, {"to": ["ann@example.com"], "subject": "Hi\r\nBcc: all@example.com",
                                   "text": "x"})
    good = await queue_email(outbox, welcome())
    report = await deliver_due(outbox=outbox, sender=FakeSender(), now=clock)
    assert (report.dead, report.sent) == (1, 1)
    assert outbox.rows[bad].dead_at is not None and outbox.rows[good].sent_at is not None
    assert "line break" in (outbox.rows[bad].last_error or "")


@pytest.mark.parametrize(("field", "value"), [
    ("subject", "Hello\r\nBcc: everyone@example.com"),
    ("subject", "Hello\nBcc: everyone@example.com"),
    ("subject", "Hello\rX-Injected: 1"),
    ("subject", "tab\tand nul\x00"),
    ("to", "ann@example.com\r\nBcc: everyone@example.com"),
    ("to", "ann@example.com\nBcc: everyone@example.com"),
    ("to", "ann@example.com, everyone@example.com"),
    ("to", "ann@example.com,everyone@example.com"),
    ("to", "Ann <ann@example.com>"),
    ("reply_to", "ann@example.com\r\nBcc: everyone@example.com"),
    ("reply_to", "a;b@example.com"),
])
def test_header_injection_is_refused_without_repeating_the_value(field: str, value: str) -> None:
    fields: dict[str, Any] = {"to": ("ann@example.com",), "subject": "Hi", "text": "Hello"}
    fields[field] = (value,) if field == "to" else value
    with pytest.raises(InvalidValue) as refused:
        Email(**fields)
    assert refused.value.field == field
    assert "Bcc" not in str(refused.value) and "everyone" not in str(refused.value)


@pytest.mark.parametrize("address", ["", "ann", "ann@@example.com", "@example.com", "ann@", "a@b@c",
                                     "ann@example..com", "ann @example.com", "änn@example.com",
                                     "a" * 65 + "@example.com"])
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(InvalidValue):
        Email(to=(address,), subject="Hi", text="Hello")


def test_an_email_needs_recipients_a_subject_and_a_text_body() -> None:
    with pytest.raises(InvalidValue, match="at least one recipient"):
        Email(to=(), subject="Hi", text="Hello")
    with pytest.raises(InvalidValue, match="list of addresses"):
        Email(to="ann@example.com", subject="Hi", text="Hello")  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="subject"):
        Email(to=("ann@example.com",), subject=" ", text="Hello")
    with pytest.raises(InvalidValue, match="plain-text body"):
        Email(to=("ann@example.com",), subject="Hi", text="")


def test_the_body_which_may_hold_a_token_stays_out_of_repr() -> None:
    email = replace(welcome(), text="https://shop.test/verify?token=SECRET", html="<a>SECRET</a>")
    assert "SECRET" not in repr(email) and "ann@example.com" in repr(email)


def test_an_email_survives_the_trip_through_the_outbox_payload() -> None:
    email = Email(to=("ann@example.com", "bob@example.com"), subject="Hi", text="Hello", html=None,
                  reply_to="help@example.com")
    assert Email.from_payload(email.to_payload()) == email


def test_stored_errors_are_one_short_line() -> None:
    assert short_error("first\nsecond\r\n  third") == "first second third"
    assert len(short_error("x" * 1000)) == 300
    assert DeliveryFailed("y" * 1000).reason.endswith("…")
