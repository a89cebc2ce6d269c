"""CommerceJobs, the worker's commerce round, on the in-memory main store: reservations that ran out are settled,
money that came for canceled orders goes back, the catalogue's in-stock flags catch up — each job retried with
back-off when it fails and never lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from commerce_shop import RESERVATION, CommerceShop

from shop.domain.orders import Order, OrderStatus, PaymentStatus
from shop.domain.payments import ChargeStatus, EventKind
from shop.services.order_payments import STOCK_CHANGED, STRAY_REFUND
from shop.services.outbox import RetryPolicy


@pytest.fixture
def shop() -> CommerceShop:
    return CommerceShop.build()


async def awaiting_the_bank(shop: CommerceShop, sku: str = "CAP", units: int = 1) -> Order:
    placed = await shop.buy((sku, units), token="tok_threeDSecure")
    return shop.order(placed.order.number)


async def stray_money(shop: CommerceShop) -> Order:
    """An order canceled by staff whose payment the bank confirmed afterwards: a refund job waits."""
    order = await awaiting_the_bank(shop)
    await shop.orders.cancel(order.number)
    assert order.payment.reference is not None
    body, headers = shop.gateway.signed(event_id="evt_late", kind=EventKind.PAYMENT_SUCCEEDED,
                                        payment_ref=order.payment.reference, amount=order.totals.total)
    assert (await shop.payments.apply_webhook("test", body, headers)).applied
    shop.gateway.payments[order.payment.reference].status = ChargeStatus.SUCCEEDED
    return order


def rows(shop: CommerceShop, kind: str) -> list[tuple[bool, bool, int]]:
    """(sent, dead, attempts) of each outbox row of `kind`."""
    return [(row.sent_at is not None, row.dead_at is not None, row.attempts)
            for row in shop.store.state.outbox if row.kind == kind]


async def test_a_round_settles_the_orders_whose_reservation_ran_out(shop: CommerceShop) -> None:
    order = await awaiting_the_bank(shop, units=2)
    assert order.payment.reference is not None
    shop.gateway.payments[order.payment.reference].status = ChargeStatus.CANCELED
    shop.clock.advance(RESERVATION + timedelta(seconds=1))
    assert await shop.jobs.run_once() >= 1
    assert shop.order(order.number).status is OrderStatus.CANCELED and shop.store.level("CAP") == (2, 0)


async def test_money_for_a_canceled_order_goes_back_once_and_its_job_is_done(shop: CommerceShop) -> None:
    order = await stray_money(shop)
    await shop.jobs.run_once()
    shop.clock.advance(timedelta(seconds=1))
    await shop.jobs.run_once()
    assert list(shop.gateway.refunds) == [f"refund-{order.number}"]
    assert shop.order(order.number).payment.status is PaymentStatus.REFUNDED
    assert rows(shop, STRAY_REFUND) == [(True, False, 1)]


async def test_a_refund_that_fails_is_tried_again_later_and_given_up_after_the_last_attempt(
        shop: CommerceShop) -> None:
    shop.jobs.retry = RetryPolicy(base=timedelta(seconds=30), max_attempts=2, jitter=0)
    order = await stray_money(shop)
    shop.gateway.unavailable = True
    await shop.jobs.run_once()
    assert rows(shop, STRAY_REFUND) == [(False, False, 1)]
    shop.clock.advance(timedelta(seconds=10))
    await shop.jobs.run_once()
    assert rows(shop, STRAY_REFUND) == [(False, False, 1)]  # not due again before its back-off
    shop.clock.advance(timedelta(seconds=21))
    await shop.jobs.run_once()
    assert rows(shop, STRAY_REFUND) == [(False, True, 2)]
    (row,) = [row for row in shop.store.state.outbox if row.kind == STRAY_REFUND]
    assert row.last_error is not None and "GatewayUnavailable" in row.last_error
    assert shop.gateway.refunds == {} and shop.order(order.number).payment.status is PaymentStatus.CAPTURED


async def test_the_in_stock_flags_catch_up_when_the_refresh_after_the_sale_failed(shop: CommerceShop) -> None:
    shop.projection.unavailable = True
    await shop.buy(("CAP", 2))
    assert shop.projection.flags[2] is True and len(shop.units.after_commit_failures) == 1  # stale, for now
    shop.projection.unavailable = False
    assert await shop.jobs.run_once() == 1
    assert shop.projection.flags[2] is False and rows(shop, STOCK_CHANGED) == [(True, False, 1)]


async def test_stock_jobs_wait_for_the_catalogue_when_it_is_away(shop: CommerceShop) -> None:
    await shop.buy(("CAP", 2))
    shop.projection.unavailable = True
    assert await shop.jobs.run_once() == 0
    assert rows(shop, STOCK_CHANGED) == [(False, False, 1)]
    shop.projection.unavailable = False
    shop.clock.advance(timedelta(minutes=5))
    assert await shop.jobs.run_once() == 1 and rows(shop, STOCK_CHANGED) == [(True, False, 2)]


async def test_an_idle_worker_comes_back_at_most_every_half_second(shop: CommerceShop) -> None:
    assert await shop.jobs.run_once() == 0  # nothing to do
    shop.projection.unavailable = True
    await shop.buy(("CAP", 2))  # its stock job is due at once
    shop.projection.unavailable = False
    assert await shop.jobs.run_once() == 0 and shop.projection.flags[2] is True
    shop.clock.advance(timedelta(seconds=0.5))
    assert await shop.jobs.run_once() == 1 and shop.projection.flags[2] is False
