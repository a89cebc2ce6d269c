"""Parcels and partial refunds (issue 16, items 2, 3 and 8) on the in-memory main store: staff ship some lines with
a carrier and a tracking number, refund an amount or lines any number of times up to what was paid, each refund
once per key; bad input is refused naming its cause, with nothing changed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from commerce_shop import CommerceShop, eur

from shop.domain.errors import Conflict, InvalidValue
from shop.domain.fulfilment import RefundLine, RefundRequest, RefundStatus, line_share
from shop.domain.money import Money
from shop.domain.orders import IllegalTransition, Order, OrderStatus, PaymentStatus
from shop.domain.pricing import Totals
from shop.infrastructure.email.rendering import JinjaMailTemplates
from shop.services.order_mail import OrderMail
from shop.services.order_refunds import gateway_key
from shop.services.payment_gateway import GatewayUnavailable

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop() -> CommerceShop:
    return CommerceShop.build()


async def packed(shop: CommerceShop, *items: tuple[str, int], discount_code: str | None = None) -> Order:
    """A paid order, fulfilled (packing started): ready to ship."""
    order = (await shop.buy(*items, discount_code=discount_code)).order
    await shop.orders.fulfil(order.number)
    return shop.order(order.number)


def money_back(amount: str) -> RefundRequest:
    return RefundRequest(amount=eur(amount))


def lines(*wanted: tuple[int, int, int]) -> RefundRequest:
    return RefundRequest(amount=None, lines=tuple(RefundLine(*line) for line in wanted))


# --- the arithmetic ---------------------------------------------------------------------------------------------


def totals(*, goods: str, discount: str, tax_rate: str, included: bool) -> Totals:
    zero = eur("0")
    return Totals(goods=eur(goods), discount=eur(discount), shipping=zero, tax=zero, total=zero,
                  tax_rate=Decimal(tax_rate), prices_include_tax=included)


@pytest.mark.parametrize(("discount", "rate", "included", "share"), [
    ("0", "0.19", True, "20.00"),  # tax-inclusive prices: the line's price is what it paid
    ("10.00", "0.19", True, "17.50"),  # a quarter of the goods takes a quarter of the discount
    ("0", "0.0725", False, "21.45"),  # tax on top: the line's tax comes back too
    ("10.00", "0.0725", False, "18.77"),  # 17.50 × 1.0725 = 18.76875, half up
])
def test_a_lines_share_is_its_price_less_its_part_of_the_discount_plus_tax_on_top(
        discount: str, rate: str, included: bool, share: str) -> None:
    paid = line_share(eur("10.00"), 2, totals(goods="80.00", discount=discount, tax_rate=rate, included=included))
    assert paid == eur(share)


def test_a_lines_share_rounds_to_the_currencys_minor_unit() -> None:
    yen = Totals(goods=Money.of("1000", "JPY"), discount=Money.of("333", "JPY"), shipping=Money.of("0", "JPY"),
                 tax=Money.of("0", "JPY"), total=Money.of("667", "JPY"), tax_rate=Decimal(0), prices_include_tax=True)
    assert line_share(Money.of("500", "JPY"), 1, yen) == Money.of("334", "JPY")  # 333.5 half up


# --- shipments --------------------------------------------------------------------------------------------------


async def test_staff_ship_half_an_order_then_the_rest_and_the_customer_hears_of_each_parcel(
        shop: CommerceShop) -> None:
    order = await packed(shop, ("TEE", 2), ("CAP", 1))
    first = await shop.orders.ship_lines(order.number, [(1, 1)], carrier="DHL", tracking="DHL-1")
    assert first.order.status is OrderStatus.PARTLY_SHIPPED and first.shipment.number == 1
    stored = shop.order(order.number)
    assert stored.status is OrderStatus.PARTLY_SHIPPED and stored.left_to_ship() == [1, 1]
    assert [(s.line, s.quantity) for s in stored.shipments[0].lines] == [(1, 1)]
    assert (stored.shipments[0].carrier, stored.shipments[0].tracking, stored.tracking) == ("DHL", "DHL-1", "DHL-1")
    second = await shop.orders.ship_lines(order.number, [(1, 1), (2, 1)], carrier="UPS", tracking="1Z")
    assert second.order.status is OrderStatus.SHIPPED and shop.order(order.number).left_to_ship() == [0, 0]
    assert [status for status, _ in shop.order(order.number).history][-2:] == [OrderStatus.PARTLY_SHIPPED,
                                                                               OrderStatus.SHIPPED]
    assert shop.emails()[-2:] == [f"order-shipped {order.number}"] * 2
    shipped = [c for c in shop.templates.rendered if c == "order-shipped"]
    assert len(shipped) == 2
    # stock was taken when the order was paid: a parcel records which units left, it takes nothing more
    assert shop.store.level("TEE") == (3, 0) and shop.store.level("CAP") == (1, 0)


async def test_shipping_a_whole_order_after_a_parcel_sends_everything_left(shop: CommerceShop) -> None:
    order = await packed(shop, ("TEE", 3))
    await shop.orders.ship_lines(order.number, [(1, 2)])
    shipped = await shop.orders.ship(order.number, tracking="REST-1")
    assert shipped.status is OrderStatus.SHIPPED
    assert [[(s.line, s.quantity) for s in p.lines] for p in shop.order(order.number).shipments] == [[(1, 2)],
                                                                                                    [(1, 1)]]
    await shop.orders.deliver(order.number)
    assert shop.order(order.number).status is OrderStatus.DELIVERED


@pytest.mark.parametrize(("wanted", "field"), [
    ([(1, 3)], "lines[0].quantity"),  # two were bought
    ([(3, 1)], "lines[0].line"),  # there are two lines
    ([(1, 1), (1, 1)], "lines[1].line"),  # a line named twice
    ([(1, 0)], "lines[0].quantity"),
    ([], "lines"),
])
async def test_a_parcel_the_order_cannot_hold_is_refused_naming_the_field_and_changes_nothing(
        shop: CommerceShop, wanted: list[tuple[int, int]], field: str) -> None:
    order = await packed(shop, ("TEE", 2), ("CAP", 1))
    before = shop.emails()
    with pytest.raises(InvalidValue) as refused:
        await shop.orders.ship_lines(order.number, wanted, carrier="DHL")
    assert refused.value.field == field
    after = shop.order(order.number)
    assert after.status is OrderStatus.FULFILLED and after.shipments == [] and shop.emails() == before


async def test_shipping_more_than_is_left_after_a_parcel_names_what_is_left(shop: CommerceShop) -> None:
    order = await packed(shop, ("TEE", 2))
    await shop.orders.ship_lines(order.number, [(1, 1)])
    with pytest.raises(InvalidValue) as refused:
        await shop.orders.ship_lines(order.number, [(1, 2)])
    assert "1 of 2 units left to ship" in refused.value.message
    assert len(shop.order(order.number).shipments) == 1


async def test_a_paid_order_is_fulfilled_before_a_parcel_leaves(shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order
    with pytest.raises(IllegalTransition):
        await shop.orders.ship_lines(order.number, [(1, 1)])
    assert shop.order(order.number).status is OrderStatus.PAID and shop.order(order.number).shipments == []


async def test_a_carrier_with_a_control_character_is_refused(shop: CommerceShop) -> None:
    order = await packed(shop, ("TEE", 1))
    with pytest.raises(InvalidValue) as refused:
        await shop.orders.ship_lines(order.number, [(1, 1)], carrier="D\x00HL")
    assert refused.value.field == "carrier" and shop.order(order.number).shipments == []


# --- refunds by amount ------------------------------------------------------------------------------------------


async def test_refunds_by_amount_add_up_to_what_was_paid_and_then_the_order_is_refunded(shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order  # 40.00 + 4.90 shipping
    assert order.totals.total == eur("44.90")
    first = await shop.orders.refund_part(order.number, money_back("10.00"), key="first-refund")
    assert first.refund.status is RefundStatus.SUCCEEDED and not first.replayed
    stored = shop.order(order.number)
    assert stored.status is OrderStatus.PAID and stored.payment.status is PaymentStatus.PARTLY_REFUNDED
    assert (stored.refunded, stored.refundable) == (eur("10.00"), eur("34.90"))
    assert shop.gateway.refunds[gateway_key(order.number, "first-refund")].amount == eur("10.00")
    await shop.orders.refund_part(order.number, money_back("34.90"), key="second-refund")
    stored = shop.order(order.number)
    assert stored.status is OrderStatus.REFUNDED and stored.payment.status is PaymentStatus.REFUNDED
    assert sum((r.amount for r in shop.gateway.refunds.values()), eur("0")) == eur("44.90")
    assert shop.emails()[-2:] == [f"order-refunded {order.number}"] * 2
    assert shop.store.level("TEE") == (3, 0)  # money only: no unit went back on the shelf


async def test_a_refund_above_what_is_left_is_refused_naming_the_amount_and_changes_nothing(
        shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order
    await shop.orders.refund_part(order.number, money_back("40.00"), key="most-of-it")
    before = shop.order(order.number)
    with pytest.raises(InvalidValue) as refused:
        await shop.orders.refund_part(order.number, money_back("5.00"), key="too-much")
    assert refused.value.field == "amount" and "4.90 EUR left to refund" in refused.value.message
    after = shop.order(order.number)
    assert len(after.refunds) == 1 and after.refunded == before.refunded == eur("40.00")
    assert len(shop.gateway.refunds) == 1


@pytest.mark.parametrize(("amount", "field"), [(eur("0"), "amount"), (Money.of("5", "USD"), "amount")])
async def test_a_zero_or_foreign_amount_is_refused(shop: CommerceShop, amount: Money, field: str) -> None:
    order = (await shop.buy(("TEE", 1))).order
    with pytest.raises(InvalidValue) as refused:
        await shop.orders.refund_part(order.number, RefundRequest(amount=amount), key="bad-amount")
    assert refused.value.field == field and shop.order(order.number).refunds == []


async def test_an_unpaid_order_has_nothing_to_refund(shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 1), token="tok_threeDSecure")).order
    with pytest.raises(Conflict, match="no captured payment"):
        await shop.orders.refund_part(order.number, money_back("1.00"), key="unpaid-order")
    assert shop.gateway.refunds == {}


# --- the same key twice -----------------------------------------------------------------------------------------


async def test_a_retry_with_the_same_key_answers_the_first_refund_and_refunds_nothing_more(
        shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order
    first = await shop.orders.refund_part(order.number, money_back("10.00"), key="retry-key")
    again = await shop.orders.refund_part(order.number, money_back("10.00"), key="retry-key")
    assert again.replayed and again.refund == first.refund
    assert shop.order(order.number).refunded == eur("10.00") and len(shop.gateway.refunds) == 1
    assert shop.emails().count(f"order-refunded {order.number}") == 1


async def test_the_same_key_with_another_request_is_refused_naming_the_key(shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order
    await shop.orders.refund_part(order.number, money_back("10.00"), key="reused-key")
    with pytest.raises(InvalidValue) as refused:
        await shop.orders.refund_part(order.number, money_back("11.00"), key="reused-key")
    assert refused.value.field == "Idempotency-Key"
    assert shop.order(order.number).refunded == eur("10.00") and len(shop.gateway.refunds) == 1


async def test_a_refund_the_gateway_could_not_make_holds_nothing_and_its_key_tries_again(shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order
    shop.gateway.unavailable = True
    with pytest.raises(GatewayUnavailable):
        await shop.orders.refund_part(order.number, money_back("10.00"), key="flaky-key")
    failed = shop.order(order.number)
    assert [r.status for r in failed.refunds] == [RefundStatus.FAILED] and failed.refunded == eur("0")
    assert failed.payment.status is PaymentStatus.CAPTURED and shop.emails()[-1] != f"order-refunded {order.number}"
    shop.gateway.unavailable = False
    done = await shop.orders.refund_part(order.number, money_back("10.00"), key="flaky-key")
    assert done.refund.status is RefundStatus.SUCCEEDED and done.refund.number == 1
    assert shop.order(order.number).refunded == eur("10.00")


async def test_a_refund_left_pending_by_a_crash_is_finished_by_its_retry_and_refunded_once(
        shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order
    refund = shop.gateway.refund
    calls = 0

    async def crash_after_the_gateway(payment_ref: str, amount: Money, *, idempotency_key: str) -> object:
        nonlocal calls
        calls += 1
        done = await refund(payment_ref, amount, idempotency_key=idempotency_key)
        if calls == 1:
            shop.store.fail_next_commit = ConnectionError("the database went away")
        return done

    shop.gateway.refund = crash_after_the_gateway  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await shop.orders.refund_part(order.number, money_back("10.00"), key="crash-key")
    assert [r.status for r in shop.order(order.number).refunds] == [RefundStatus.PENDING]
    done = await shop.orders.refund_part(order.number, money_back("10.00"), key="crash-key")
    assert done.refund.status is RefundStatus.SUCCEEDED and len(shop.gateway.refunds) == 1
    assert shop.order(order.number).refunded == eur("10.00")


# --- refunds by lines -------------------------------------------------------------------------------------------


async def test_a_refunded_line_restocked_goes_back_on_the_shelf_and_one_not_restocked_does_not(
        shop: CommerceShop) -> None:
    order = await packed(shop, ("TEE", 2), ("CAP", 2))
    assert shop.store.level("TEE") == (3, 0) and shop.store.level("CAP") == (0, 0)
    done = await shop.orders.refund_part(order.number, lines((1, 1, 1), (2, 1, 0)), key="lines-key")
    assert done.refund.amount == eur("29.50")  # 20.00 + 9.50: prices include tax, no discount, no shipping
    assert shop.store.level("TEE") == (4, 0) and shop.store.level("CAP") == (0, 0)
    stored = shop.order(order.number)
    assert stored.refunded_units() == [1, 1] and stored.left_to_ship() == [1, 1]
    assert stored.payment.status is PaymentStatus.PARTLY_REFUNDED


async def test_a_lines_refund_takes_its_share_of_the_discount(shop: CommerceShop) -> None:
    shop.voucher("TENOFF")
    order = (await shop.buy(("TEE", 2), ("CAP", 2), discount_code="TENOFF")).order
    assert order.totals.discount == eur("5.90")  # 10 % of 59.00
    done = await shop.orders.refund_part(order.number, lines((1, 2, 0)), key="discount-key")
    assert done.refund.amount == eur("36.00")  # 40.00 less 40/59 of 5.90


async def test_more_units_than_bought_or_left_to_refund_are_refused_naming_the_line(shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order
    await shop.orders.refund_part(order.number, lines((1, 1, 0)), key="one-tee")
    for request, field in ((lines((1, 2, 0)), "lines[0].quantity"), (lines((1, 1, 2)), "lines[0].restock"),
                           (lines((2, 1, 0)), "lines[0].line")):
        with pytest.raises(InvalidValue) as refused:
            await shop.orders.refund_part(order.number, request, key=f"bad-{field}-{request.lines[0].restock}")
        assert refused.value.field == field
    assert len(shop.order(order.number).refunds) == 1


async def test_refunding_every_line_one_by_one_never_exceeds_what_was_paid(shop: CommerceShop) -> None:
    shop.voucher("THIRD", value="33.33")
    order = (await shop.buy(("MUG-RED", 3), discount_code="THIRD")).order
    for n in range(3):
        await shop.orders.refund_part(order.number, lines((1, 1, 0)), key=f"mug-{n}")
    stored = shop.order(order.number)
    assert stored.refunded <= stored.captured
    assert stored.captured - stored.refunded == stored.totals.shipping  # the lines gave back all but shipping


async def test_a_whole_refund_after_a_partial_one_gives_back_the_rest_and_restocks_only_what_is_on_the_shelf(
        shop: CommerceShop) -> None:
    order = await packed(shop, ("TEE", 3))
    await shop.orders.ship_lines(order.number, [(1, 1)])
    await shop.orders.refund_part(order.number, lines((1, 1, 1)), key="one-back")
    assert shop.store.level("TEE") == (3, 0)  # 5 − 3 sold + 1 restocked
    refunded = await shop.orders.refund(order.number)
    assert refunded.status is OrderStatus.REFUNDED and refunded.refundable == eur("0")
    assert shop.store.level("TEE") == (4, 0)  # the one left unshipped and not yet restocked
    assert sum((r.amount for r in shop.gateway.refunds.values()), eur("0")) == order.totals.total


async def test_canceling_after_a_partial_refund_gives_back_only_the_rest(shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order
    await shop.orders.refund_part(order.number, lines((1, 1, 1)), key="one-tee-back")
    canceled = await shop.orders.cancel(order.number)
    assert canceled.status is OrderStatus.CANCELED and canceled.payment.status is PaymentStatus.REFUNDED
    assert sum((r.amount for r in shop.gateway.refunds.values()), eur("0")) == order.totals.total
    assert shop.store.level("TEE") == (5, 0)  # each unit back once


async def test_two_refunds_at_once_never_give_back_more_than_was_paid(shop: CommerceShop) -> None:
    order = (await shop.buy(("TEE", 2))).order
    results = await asyncio.gather(
        shop.orders.refund_part(order.number, money_back("30.00"), key="staff-one"),
        shop.orders.refund_part(order.number, money_back("30.00"), key="staff-two"), return_exceptions=True)
    refused = [r for r in results if isinstance(r, InvalidValue)]
    assert len(refused) == 1 and refused[0].field == "amount"
    assert shop.order(order.number).refunded == eur("30.00")
    assert sum((r.amount for r in shop.gateway.refunds.values()), eur("0")) == eur("30.00")


async def test_refunding_the_units_a_partly_shipped_order_still_owes_makes_it_shipped(shop: CommerceShop) -> None:
    order = await packed(shop, ("TEE", 2))
    await shop.orders.ship_lines(order.number, [(1, 1)])
    await shop.orders.refund_part(order.number, lines((1, 1, 1)), key="out-of-stock-unit")
    stored = shop.order(order.number)
    assert stored.status is OrderStatus.SHIPPED and stored.left_to_ship() == [0]
    await shop.orders.deliver(order.number)
    assert shop.order(order.number).status is OrderStatus.DELIVERED


async def test_the_parcel_and_refund_emails_render_in_text_and_html(shop: CommerceShop) -> None:
    order = await packed(shop, ("TEE", 2))
    parcel = (await shop.orders.ship_lines(order.number, [(1, 1)], carrier="DHL <Express>", tracking="T-1")).shipment
    mail = OrderMail(templates=JinjaMailTemplates(shop_name="Test shop"), public_url="https://shop.example")
    shipped = mail.render("order-shipped", shop.order(order.number), shipment=parcel)
    assert "Part of your order" in shipped.text and "Carrier: DHL <Express>" in shipped.text
    assert "1 × " in shipped.text and shipped.html is not None and "DHL &lt;Express&gt;" in shipped.html
    refund = (await shop.orders.refund_part(order.number, RefundRequest(
        amount=None, lines=(RefundLine(1, 1, 1),), reason="out of stock"), key="mail-key")).refund
    stored = shop.order(order.number)
    refunded = mail.render("order-refunded", stored, refund=refund)
    assert refunded.subject == f"Your Test shop order {order.number}: 20.00 EUR refunded"
    assert "Reason: out of stock" in refunded.text and refunded.html is not None and "20.00 EUR" in refunded.html
    whole = mail.render("order-shipped", stored)  # without a parcel: the whole order, as before
    assert "has been handed to the carrier" in whole.text
