"""OrderPayments on the in-memory main store: every move of an order's money — the charge's answer, a gateway's
webhook, staff's cancel and refund, the expiry of an unpaid reservation, the worker's stray refund — moves stock,
vouchers, the cart, the confirmation and the in-stock flags the same way, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from commerce_shop import RESERVATION, CommerceShop, eur
from payment_fakes import UNAVAILABLE

from shop.domain.cart import CartStatus
from shop.domain.errors import NotFound
from shop.domain.money import Money
from shop.domain.orders import IllegalTransition, Order, OrderStatus, PaymentStatus
from shop.domain.payments import ChargeRequest, ChargeResult, ChargeStatus, EventKind, InvalidWebhook
from shop.services.checkout import PaymentDeclined
from shop.services.order_payments import STOCK_CHANGED, STRAY_REFUND


@pytest.fixture
def shop() -> CommerceShop:
    return CommerceShop.build()


async def awaiting_the_bank(shop: CommerceShop, *items: tuple[str, int], discount_code: str | None = None) -> Order:
    """An order placed with a card that needs 3-D Secure: pending, its stock held."""
    placed = await shop.buy(*items, token="tok_threeDSecure", discount_code=discount_code)
    assert placed.order.status is OrderStatus.PENDING
    return shop.order(placed.order.number)


def ref(order: Order) -> str:
    assert order.payment.reference is not None
    return order.payment.reference


async def webhook(shop: CommerceShop, order: Order, kind: EventKind, *, event_id: str = "evt_1",
                  amount: Money | None = None, payment_ref: str | None = None) -> bool:
    body, headers = shop.gateway.signed(event_id=event_id, kind=kind, payment_ref=payment_ref or ref(order),
                                        amount=amount or order.totals.total, reference=order.number)
    return (await shop.payments.apply_webhook("test", body, headers)).applied


# --- what the gateway answered a charge --------------------------------------------------------------------


async def test_a_succeeded_charge_pays_a_pending_order_once(shop: CommerceShop) -> None:
    order = await awaiting_the_bank(shop, ("CAP", 2))
    result = ChargeResult(ChargeStatus.SUCCEEDED, ref(order))
    paid = await shop.payments.record_charge(order.number, result)
    again = await shop.payments.record_charge(order.number, result)
    assert paid.status is again.status is OrderStatus.PAID
    assert shop.store.level("CAP") == (0, 0)  # taken once: a second take would have found nothing held
    assert shop.emails() == [f"order-confirmation {order.number}"]
    assert [seen for seen in shop.events.seen if seen[0] == "captured"] == [("captured", order.number,
                                                                            OrderStatus.PAID)]


@pytest.mark.parametrize(("status", "payment"), [(ChargeStatus.REQUIRES_ACTION, PaymentStatus.REQUIRES_ACTION),
                                                 (ChargeStatus.PROCESSING, PaymentStatus.PENDING)])
async def test_an_answer_that_is_not_final_only_updates_the_payment(shop: CommerceShop, status: ChargeStatus,
                                                                     payment: PaymentStatus) -> None:
    order = await awaiting_the_bank(shop, ("CAP", 1))
    await shop.payments.record_charge(order.number, ChargeResult(status, "pay_later"))
    stored = shop.order(order.number)
    assert (stored.status, stored.payment.status, stored.payment.reference) == (OrderStatus.PENDING, payment,
                                                                                "pay_later")
    assert shop.store.level("CAP") == (2, 1)


async def test_a_charge_that_succeeds_after_the_order_was_canceled_does_not_pay_it(shop: CommerceShop) -> None:
    charge = shop.gateway.charge

    async def canceled_mid_charge(request: ChargeRequest) -> ChargeResult:
        await shop.orders.cancel(request.reference)  # staff, while the bank decides
        return await charge(request)

    shop.gateway.charge = canceled_mid_charge  # type: ignore[method-assign]
    with pytest.raises(PaymentDeclined) as refused:
        await shop.buy(("CAP", 1))
    number = refused.value.number
    order = shop.order(number)
    assert order.status is OrderStatus.CANCELED
    assert [status for status, _ in order.history] == [OrderStatus.PENDING, OrderStatus.CANCELED]
    assert shop.store.level("CAP") == (2, 0) and shop.emails() == []  # released by the cancel, never taken
    # the card was charged all the same: the money is recorded and the worker gives it back
    assert order.payment.status is PaymentStatus.CAPTURED
    assert shop.store.queued(STRAY_REFUND) == [{"order": number, "provider": "test", "payment_ref": ref(order)}]


async def test_the_worker_gives_stray_money_back_once(shop: CommerceShop) -> None:
    order = await awaiting_the_bank(shop, ("CAP", 1))
    await shop.orders.cancel(order.number)
    assert await webhook(shop, order, EventKind.PAYMENT_SUCCEEDED)  # the bank confirmed after all
    shop.gateway.payments[ref(order)].status = ChargeStatus.SUCCEEDED
    (job,) = shop.store.queued(STRAY_REFUND)
    await shop.payments.refund_stray_payment(job)
    await shop.payments.refund_stray_payment(job)  # the job delivered again
    assert list(shop.gateway.refunds) == [f"refund-{order.number}"]
    assert shop.gateway.refunds[f"refund-{order.number}"].amount == order.totals.total
    assert shop.order(order.number).payment.status is PaymentStatus.REFUNDED
    assert shop.order(order.number).status is OrderStatus.CANCELED


# --- what a gateway tells us on its own --------------------------------------------------------------------


async def test_a_webhook_for_a_pending_order_pays_it_and_sends_the_confirmation(shop: CommerceShop) -> None:
    order = await awaiting_the_bank(shop, ("CAP", 2))
    assert await webhook(shop, order, EventKind.PAYMENT_SUCCEEDED)
    paid = shop.order(order.number)
    assert paid.status is OrderStatus.PAID and paid.payment.status is PaymentStatus.CAPTURED
    assert paid.reservation_expires_at is None
    assert shop.store.level("CAP") == (0, 0) and shop.emails() == [f"order-confirmation {order.number}"]
    assert ("captured", order.number, OrderStatus.PAID) in shop.events.seen


async def test_a_webhook_delivered_three_times_is_taken_once(shop: CommerceShop) -> None:
    order = await awaiting_the_bank(shop, ("MUG-RED", 1))
    applied = [await webhook(shop, order, EventKind.PAYMENT_SUCCEEDED, event_id="evt_same") for _ in range(3)]
    assert applied == [True, False, False]
    assert shop.store.level("MUG-RED") == (2, 0) and len(shop.emails()) == 1
    assert shop.store.state.payment_events == {("test", "evt_same")}


async def test_a_webhook_with_a_bad_signature_changes_nothing(shop: CommerceShop) -> None:
    order = await awaiting_the_bank(shop, ("CAP", 1))
    body, headers = shop.gateway.signed(event_id="evt_1", kind=EventKind.PAYMENT_SUCCEEDED, payment_ref=ref(order),
                                        amount=order.totals.total)
    with pytest.raises(InvalidWebhook):
        await shop.payments.apply_webhook("test", body.replace(b"evt_1", b"evt_2"), headers)
    with pytest.raises(NotFound):
        await shop.payments.apply_webhook("paypal", body, headers)
    assert shop.order(order.number).status is OrderStatus.PENDING and shop.store.state.payment_events == set()


async def test_a_webhook_naming_no_order_we_know_is_not_applied(shop: CommerceShop) -> None:
    order = await awaiting_the_bank(shop, ("CAP", 1))
    body, headers = shop.gateway.signed(event_id="evt_1", kind=EventKind.PAYMENT_SUCCEEDED, payment_ref="pay_other",
                                        amount=order.totals.total)
    assert not (await shop.payments.apply_webhook("test", body, headers)).applied
    assert shop.order(order.number).status is OrderStatus.PENDING


async def test_an_event_the_shop_does_not_act_on_is_not_applied(shop: CommerceShop) -> None:
    order = await awaiting_the_bank(shop, ("CAP", 1))
    body, headers = shop.gateway.signed(event_id="evt_1", kind=EventKind.OTHER, payment_ref=ref(order),
                                        amount=order.totals.total)
    assert not (await shop.payments.apply_webhook("test", body, headers)).applied
    assert shop.store.state.payment_events == set()


@pytest.mark.parametrize("amount", ["0.01", "+0.01", "USD"])
async def test_a_webhook_for_another_amount_or_currency_does_not_pay_the_order_and_staff_see_it(
        shop: CommerceShop, amount: str) -> None:
    order = await awaiting_the_bank(shop, ("CAP", 1))
    total = order.totals.total
    brought = {"0.01": eur("0.01"), "+0.01": total + eur("0.01"), "USD": Money(total.amount, "USD")}[amount]
    assert await webhook(shop, order, EventKind.PAYMENT_SUCCEEDED, amount=brought)
    flagged = shop.order(order.number)
    assert flagged.status is OrderStatus.PENDING and flagged.payment.status is PaymentStatus.MISMATCHED
    assert flagged.payment.alert is not None and str(brought) in flagged.payment.alert
    assert shop.store.level("CAP") == (2, 1) and shop.emails() == []  # still held, nothing sent


async def test_money_of_the_wrong_amount_for_a_paid_order_is_flagged_without_touching_it(shop: CommerceShop) -> None:
    order = (await shop.buy(("CAP", 1))).order
    assert await webhook(shop, shop.order(order.number), EventKind.PAYMENT_SUCCEEDED, amount=eur("1.00"))
    stored = shop.order(order.number)
    assert stored.status is OrderStatus.PAID and stored.payment.status is PaymentStatus.CAPTURED
    assert stored.payment.alert is not None and shop.store.level("CAP") == (1, 0)


async def test_a_failed_payment_event_cancels_a_pending_order_and_gives_everything_back(shop: CommerceShop) -> None:
    shop.voucher("TENOFF", usage_limit=3)
    order = await awaiting_the_bank(shop, ("CAP", 2), discount_code="TENOFF")
    assert shop.projection.flags[2] is False
    assert await webhook(shop, order, EventKind.PAYMENT_FAILED)
    canceled = shop.order(order.number)
    assert canceled.status is OrderStatus.CANCELED and canceled.payment.status is PaymentStatus.FAILED
    assert shop.store.level("CAP") == (2, 0) and shop.store.times_used("TENOFF") == 0
    assert shop.store.cart(order.cart_id or "").status is CartStatus.OPEN
    assert shop.projection.flags[2] is True
    assert ("declined", order.number, OrderStatus.CANCELED) in shop.events.seen


async def test_a_full_refund_at_the_gateway_puts_unshipped_goods_back(shop: CommerceShop) -> None:
    order = (await shop.buy(("CAP", 2))).order
    assert shop.projection.flags[2] is False
    assert await webhook(shop, shop.order(order.number), EventKind.REFUNDED)
    refunded = shop.order(order.number)
    assert refunded.status is OrderStatus.REFUNDED and refunded.payment.status is PaymentStatus.REFUNDED
    assert shop.store.level("CAP") == (2, 0) and shop.projection.flags[2] is True
    assert shop.store.queued(STOCK_CHANGED)[-1] == {"skus": ["CAP"]}


async def test_a_partial_refund_at_the_gateway_leaves_the_order_standing(shop: CommerceShop) -> None:
    order = (await shop.buy(("CAP", 2))).order
    assert not await webhook(shop, shop.order(order.number), EventKind.REFUNDED, amount=eur("5.00"))
    assert shop.order(order.number).status is OrderStatus.PAID and shop.store.level("CAP") == (0, 0)


async def test_the_test_gateway_s_3d_secure_page_pays_through_the_webhook_path(shop: CommerceShop) -> None:
    order = await awaiting_the_bank(shop, ("CAP", 1))
    outcome = await shop.payments.authenticate_test_payment(ref(order))
    assert outcome.applied and outcome.order == order.number
    assert shop.order(order.number).status is OrderStatus.PAID and len(shop.store.state.payment_events) == 1
    with pytest.raises(NotFound):
        await shop.payments.authenticate_test_payment("pay_guessed")


# --- staff ---------------------------------------------------------------------------------------------------


async def test_canceling_a_pending_order_lets_its_stock_and_voucher_go_without_a_refund(shop: CommerceShop) -> None:
    shop.voucher("TENOFF")
    order = await awaiting_the_bank(shop, ("TEE", 2), discount_code="TENOFF")
    canceled = await shop.orders.cancel(order.number)
    assert canceled.status is OrderStatus.CANCELED and canceled.payment.status is PaymentStatus.CANCELED
    assert shop.order(order.number).status is OrderStatus.CANCELED
    assert shop.store.level("TEE") == (5, 0) and shop.store.times_used("TENOFF") == 0
    assert shop.gateway.refunds == {}
    assert shop.store.cart(order.cart_id or "").status is CartStatus.ORDERED  # staff's cancel: no second try


async def test_canceling_a_paid_order_refunds_and_restocks_it(shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order
    canceled = await shop.orders.cancel(order.number)
    assert canceled.status is OrderStatus.CANCELED and canceled.payment.status is PaymentStatus.REFUNDED
    assert shop.gateway.refunds[f"refund-{order.number}"].amount == order.totals.total
    assert shop.store.level("TEE") == (5, 0)


@pytest.mark.parametrize("moves", [("fulfil",), ("fulfil", "ship")])
async def test_an_order_that_was_packed_cannot_be_canceled(shop: CommerceShop, moves: tuple[str, ...]) -> None:
    order = (await shop.buy(("TEE", 1))).order
    for move in moves:
        await getattr(shop.orders, move)(order.number)
    with pytest.raises(IllegalTransition):
        await shop.orders.cancel(order.number)
    assert shop.gateway.refunds == {} and shop.store.level("TEE") == (4, 0)


async def test_refunding_an_unshipped_order_puts_its_goods_back(shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order
    await shop.orders.fulfil(order.number)
    refunded = await shop.orders.refund(order.number)
    assert refunded.status is OrderStatus.REFUNDED and refunded.payment.status is PaymentStatus.REFUNDED
    assert list(shop.gateway.refunds) == [f"refund-{order.number}"] and shop.store.level("TEE") == (5, 0)


async def test_refunding_a_shipped_order_gives_the_money_back_but_not_the_goods(shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order
    await shop.orders.fulfil(order.number)
    await shop.orders.ship(order.number, tracking="TRACK-1")
    await shop.orders.refund(order.number)
    assert shop.order(order.number).status is OrderStatus.REFUNDED and shop.store.level("TEE") == (3, 0)


async def test_a_refund_whose_gateway_event_came_first_restocks_once(shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order
    refund = shop.gateway.refund

    async def event_first(payment_ref: str, amount: Money, *, idempotency_key: str) -> object:
        done = await refund(payment_ref, amount, idempotency_key=idempotency_key)
        assert await webhook(shop, shop.order(order.number), EventKind.REFUNDED, event_id="evt_refund")
        return done

    shop.gateway.refund = event_first  # type: ignore[assignment]
    refunded = await shop.orders.refund(order.number)
    assert refunded.status is OrderStatus.REFUNDED and shop.store.level("TEE") == (5, 0)


@pytest.mark.parametrize("token", ["tok_threeDSecure", "tok_declined"])
async def test_an_order_that_was_never_paid_cannot_be_refunded(shop: CommerceShop, token: str) -> None:
    cart_id = await shop.cart_with(("TEE", 1))
    try:
        number = (await shop.checkout.place_order(shop.request(cart_id, token=token))).order.number
    except PaymentDeclined as declined:
        number = declined.number
    before = shop.order(number)
    with pytest.raises(IllegalTransition):
        await shop.orders.refund(number)
    assert shop.gateway.refunds == {} and shop.order(number).status is before.status


async def test_canceling_or_refunding_an_unknown_order_is_not_found(shop: CommerceShop) -> None:
    for move in (shop.orders.cancel, shop.orders.refund):
        with pytest.raises(NotFound):
            await move("999999")


# --- the worker: reservations that ran out -----------------------------------------------------------------


async def test_an_unpaid_order_whose_reservation_ran_out_gives_its_stock_back(shop: CommerceShop) -> None:
    shop.voucher("TENOFF")
    order = await awaiting_the_bank(shop, ("CAP", 2), discount_code="TENOFF")
    shop.gateway.payments[ref(order)].status = ChargeStatus.CANCELED  # the customer never authenticated
    assert await shop.payments.expire_reservations() == 0  # not yet
    shop.clock.advance(RESERVATION + timedelta(seconds=1))
    assert await shop.payments.expire_reservations() == 1
    expired = shop.order(order.number)
    assert expired.status is OrderStatus.CANCELED and expired.payment.status is PaymentStatus.CANCELED
    assert shop.store.level("CAP") == (2, 0) and shop.store.times_used("TENOFF") == 0
    assert shop.projection.flags[2] is True
    assert await shop.payments.expire_reservations() == 0


async def test_an_order_paid_after_all_is_paid_at_expiry_not_released(shop: CommerceShop) -> None:
    order = await awaiting_the_bank(shop, ("CAP", 1))
    shop.gateway.payments[ref(order)].status = ChargeStatus.SUCCEEDED  # its webhook was lost
    shop.clock.advance(RESERVATION + timedelta(seconds=1))
    assert await shop.payments.expire_reservations() == 1
    assert shop.order(order.number).status is OrderStatus.PAID and shop.store.level("CAP") == (1, 0)
    assert shop.emails() == [f"order-confirmation {order.number}"]


async def test_an_order_the_bank_still_processes_keeps_its_stock_past_its_reservation(shop: CommerceShop) -> None:
    placed = await shop.buy(("CAP", 1), token="tok_processing")
    shop.clock.advance(RESERVATION + timedelta(minutes=1))
    assert await shop.payments.expire_reservations() == 0
    assert shop.order(placed.order.number).status is OrderStatus.PENDING and shop.store.level("CAP") == (2, 1)


async def test_an_order_is_left_alone_while_the_gateway_cannot_say(shop: CommerceShop) -> None:
    order = await awaiting_the_bank(shop, ("CAP", 1))
    shop.gateway.unavailable = True
    shop.clock.advance(RESERVATION + timedelta(minutes=1))
    assert await shop.payments.expire_reservations() == 0
    assert shop.order(order.number).status is OrderStatus.PENDING and shop.store.level("CAP") == (2, 1)


async def test_an_order_whose_charge_never_got_an_answer_is_released_at_expiry(shop: CommerceShop) -> None:
    placed = await shop.buy(("CAP", 1), token=UNAVAILABLE)  # no payment was made: nothing to ask about
    shop.clock.advance(RESERVATION + timedelta(minutes=1))
    assert await shop.payments.expire_reservations() == 1
    assert shop.order(placed.order.number).status is OrderStatus.CANCELED and shop.store.level("CAP") == (2, 0)
