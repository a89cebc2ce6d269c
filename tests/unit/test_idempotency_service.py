"""Idempotency keys with Stripe's semantics on the in-memory main store, alone and around a checkout: the same
key and request give the first answer again, another request is refused, a failure on our side can be retried,
and an order whose answer was lost is finished by the retry, never placed twice."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace
from datetime import timedelta

import pytest
from commerce_shop import CommerceShop

from shop.domain.errors import DomainError, InvalidValue
from shop.domain.orders import OrderStatus, PaymentStatus
from shop.domain.payments import ChargeRequest, ChargeResult
from shop.services.checkout import CheckoutRequest, PaymentDeclined, PlacedOrder
from shop.services.idempotency import Idempotency, RequestInProgress, Ticket, fingerprint
from shop.services.ports import StoreUnavailable

KEY = "2f1c0a4e-key-one"
SCOPE = "checkout:guest"
BODY = fingerprint(b'{"cart_id": "c1"}')


@pytest.fixture
def shop() -> CommerceShop:
    return CommerceShop.build()


class Counted:
    """An action that answers `status` and counts its runs."""

    def __init__(self, status: int = 201) -> None:
        self.status = status
        self.runs: list[Ticket] = []

    async def __call__(self, ticket: Ticket) -> tuple[int, object]:
        self.runs.append(ticket)
        return self.status, {"run": len(self.runs)}


def gone() -> StoreUnavailable:
    return StoreUnavailable("main", "db.test", "connection was closed in the middle of operation")


async def test_the_same_key_and_request_get_the_first_answer_without_running_again(shop: CommerceShop) -> None:
    action = Counted()
    first = await shop.idempotency.run(SCOPE, KEY, BODY, action)
    again = await shop.idempotency.run(SCOPE, KEY, BODY, action)
    assert (first.status, first.body, first.replayed) == (201, {"run": 1}, False)
    assert (again.status, again.body, again.replayed) == (201, {"run": 1}, True)
    assert action.runs == [Ticket(SCOPE, KEY)]


async def test_the_same_key_with_another_body_is_refused(shop: CommerceShop) -> None:
    action = Counted()
    await shop.idempotency.run(SCOPE, KEY, BODY, action)
    with pytest.raises(InvalidValue) as refused:
        await shop.idempotency.run(SCOPE, KEY, fingerprint(b'{"cart_id": "c2"}'), action)
    assert refused.value.field == "Idempotency-Key" and "different request" in refused.value.message
    assert len(action.runs) == 1


async def test_a_key_is_its_scope_s_alone(shop: CommerceShop) -> None:
    action = Counted()
    await shop.idempotency.run("checkout:u1", KEY, BODY, action)
    other = await shop.idempotency.run("checkout:u2", KEY, BODY, action)
    assert not other.replayed and len(action.runs) == 2


@pytest.mark.parametrize("key", ["short", "x" * 256, "has space in it", "naïve-key-1"])
async def test_a_malformed_key_is_refused_naming_the_header(shop: CommerceShop, key: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        await shop.idempotency.run(SCOPE, key, BODY, Counted())
    assert refused.value.field == "Idempotency-Key"


async def test_a_retry_while_the_first_still_runs_is_told_when_to_come_back(shop: CommerceShop) -> None:
    seen: list[int] = []

    async def slow(ticket: Ticket) -> tuple[int, object]:
        shop.clock.advance(timedelta(seconds=4))
        with pytest.raises(RequestInProgress) as held:
            await shop.idempotency.run(SCOPE, KEY, BODY, Counted())
        seen.append(held.value.retry_after)
        return 201, {}

    await shop.idempotency.run(SCOPE, KEY, BODY, slow)
    assert seen == [11]  # locked for 15 s, 4 of them gone


async def test_an_answer_below_500_is_kept_but_a_failure_on_our_side_can_run_again(shop: CommerceShop) -> None:
    refused = Counted(status=422)
    await shop.idempotency.run(SCOPE, KEY, BODY, refused)
    assert (await shop.idempotency.run(SCOPE, KEY, BODY, refused)).replayed
    failing = Counted(status=503)
    await shop.idempotency.run(SCOPE, "another-key-2", BODY, failing)
    again = await shop.idempotency.run(SCOPE, "another-key-2", BODY, failing)
    assert not again.replayed and len(failing.runs) == 2


async def test_a_request_that_raised_runs_again_in_full(shop: CommerceShop) -> None:
    async def broken(ticket: Ticket) -> tuple[int, object]:
        raise gone()

    with pytest.raises(StoreUnavailable):
        await shop.idempotency.run(SCOPE, KEY, BODY, broken)
    action = Counted()
    assert not (await shop.idempotency.run(SCOPE, KEY, BODY, action)).replayed and len(action.runs) == 1


async def test_a_request_that_died_holding_its_key_is_taken_over_once_the_lock_runs_out(shop: CommerceShop) -> None:
    shop.idempotency_store.finish_error = gone()
    await shop.idempotency_store.claim(SCOPE, KEY, BODY, now=shop.clock.now, lock_for=15, keep_for=86400)
    with pytest.raises(RequestInProgress):
        await shop.idempotency.run(SCOPE, KEY, BODY, Counted())
    shop.clock.advance(timedelta(seconds=16))
    shop.idempotency_store.finish_error = None
    action = Counted()
    assert (await shop.idempotency.run(SCOPE, KEY, BODY, action)).status == 201 and len(action.runs) == 1


async def test_keys_are_kept_their_time_and_then_purged(shop: CommerceShop) -> None:
    action = Counted()
    await shop.idempotency.run(SCOPE, KEY, BODY, action)
    shop.clock.advance(timedelta(hours=47))
    assert await shop.idempotency.purge() == 0 and (await shop.idempotency.run(SCOPE, KEY, BODY, action)).replayed
    shop.clock.advance(timedelta(hours=1))
    assert await shop.idempotency.purge() == 1
    assert not (await shop.idempotency.run(SCOPE, KEY, BODY, action)).replayed


def test_keys_must_be_kept_at_least_a_day(shop: CommerceShop) -> None:
    with pytest.raises(ValueError, match="24 hours"):
        Idempotency(shop.idempotency_store, keep=timedelta(hours=23))


# --- around a checkout, as the API runs it ---------------------------------------------------------------


async def answer(work: Awaitable[PlacedOrder]) -> tuple[int, object]:
    """What the checkout route answers: the order, or the problem's status."""
    try:
        placed = await work
    except PaymentDeclined as exc:
        return 402, {"order": exc.number}
    except DomainError as exc:
        return 409, {"detail": str(exc)}
    status = 202 if placed.order.status is OrderStatus.PENDING else 201
    return status, {"number": placed.order.number, "status": placed.order.status.value,
                    "access_key": placed.access_key}


def checkout_once(shop: CommerceShop, request: CheckoutRequest) -> Awaitable[tuple[int, object]]:
    def place(ticket: Ticket) -> Awaitable[tuple[int, object]]:
        return answer(shop.checkout.place_order(replace(request, idempotency=ticket)))

    def resume(number: str, access_key: str) -> Awaitable[tuple[int, object]]:
        return answer(shop.checkout.resume(request, number=number, access_key=access_key))

    async def run() -> tuple[int, object]:
        outcome = await shop.idempotency.run(SCOPE, KEY, BODY, place, resume)
        return outcome.status, outcome.body

    return run()


async def test_a_placed_order_is_tied_to_the_key_its_request_claimed(shop: CommerceShop) -> None:
    request = shop.request(await shop.cart_with(("TEE", 1)))
    status, body = await checkout_once(shop, request)
    row = shop.store.state.keys[(SCOPE, KEY)]
    assert status == 201 and isinstance(body, dict)
    assert (row.order_number, row.access_key, row.status) == (body["number"], body["access_key"], 201)


async def test_a_refused_checkout_is_replayed_as_refused(shop: CommerceShop) -> None:
    request = shop.request(await shop.cart_with(("TEE", 1)), token="tok_declined")
    first = await checkout_once(shop, request)
    assert first[0] == 402
    shop.gateway.payments.clear()  # the card would pass now: the stored refusal is what a retry gets
    assert await checkout_once(shop, request) == first
    assert len(shop.store.state.orders) == 1


async def test_an_order_paid_before_its_answer_was_lost_is_answered_to_the_retry(shop: CommerceShop) -> None:
    request = shop.request(await shop.cart_with(("TEE", 2)))
    shop.idempotency_store.finish_error = gone()
    with pytest.raises(StoreUnavailable):
        await checkout_once(shop, request)
    (order,) = shop.store.state.orders.values()
    assert order.status is OrderStatus.PAID
    status, body = await checkout_once(shop, request)
    assert status == 201 and isinstance(body, dict) and body["number"] == order.number
    assert body["access_key"] == shop.store.state.keys[(SCOPE, KEY)].access_key  # the lost answer's key
    assert len(shop.store.state.orders) == 1 and len(shop.gateway.charges) == 1
    assert shop.store.level("TEE") == (3, 0)  # taken once
    assert await checkout_once(shop, request) == (status, body)


async def test_a_charge_whose_outcome_never_reached_the_order_is_asked_again_and_paid_once(
        shop: CommerceShop) -> None:
    charge = shop.gateway.charge

    async def then_the_store_goes(request: ChargeRequest) -> ChargeResult:
        result = await charge(request)
        shop.store.fail_next_commit = gone()  # the bank said yes; recording it fails
        return result

    shop.gateway.charge = then_the_store_goes  # type: ignore[method-assign]
    request = shop.request(await shop.cart_with(("TEE", 2)))
    with pytest.raises(StoreUnavailable):
        await checkout_once(shop, request)
    (order,) = shop.store.state.orders.values()
    assert (order.status, order.payment.status) == (OrderStatus.PENDING, PaymentStatus.PENDING)
    shop.gateway.charge = charge  # type: ignore[method-assign]
    status, body = await checkout_once(shop, request)
    assert status == 201 and isinstance(body, dict) and body["number"] == order.number
    first, second = shop.gateway.charges
    assert first.idempotency_key == second.idempotency_key and len(shop.gateway.payments) == 1
    assert shop.order(order.number).payment.status is PaymentStatus.CAPTURED
    assert shop.store.level("TEE") == (3, 0)


async def test_an_order_canceled_before_the_retry_came_is_a_conflict_not_a_new_order(shop: CommerceShop) -> None:
    request = shop.request(await shop.cart_with(("TEE", 1)), token="tok_threeDSecure")
    shop.idempotency_store.finish_error = gone()
    with pytest.raises(StoreUnavailable):
        await checkout_once(shop, request)
    (order,) = shop.store.state.orders.values()
    await shop.orders.cancel(order.number)
    status, _ = await checkout_once(shop, request)
    assert status == 409 and len(shop.store.state.orders) == 1
