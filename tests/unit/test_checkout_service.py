"""CheckoutService.place_order on the in-memory main store: one transaction prices the locked cart, reserves its
stock, counts its voucher and stores the order (all of it, or nothing); then the charge's answer moves the order."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from commerce_shop import ADDRESS, RESERVATION, CommerceShop, eur
from payment_fakes import UNAVAILABLE

from shop.domain.cart import CartClosed, CartStatus
from shop.domain.discounts import VoucherKind, VoucherNotApplicable
from shop.domain.errors import InvalidValue, NotFound, OutOfStock
from shop.domain.orders import OrderStatus, PaymentStatus
from shop.domain.payments import InvalidPaymentToken
from shop.services.checkout import ItemsUnavailable, PaymentDeclined
from shop.services.order_payments import STOCK_CHANGED


@pytest.fixture
def shop() -> CommerceShop:
    return CommerceShop.build()


async def test_a_paid_order_takes_its_stock_off_the_shelf_and_queues_its_confirmation(shop: CommerceShop) -> None:
    placed = await shop.buy(("MUG-RED", 2), ("CAP", 1))
    order = shop.order(placed.order.number)
    assert order.status is OrderStatus.PAID and order.payment.status is PaymentStatus.CAPTURED
    assert order.payment.reference is not None and order.reservation_expires_at is None
    assert shop.store.level("MUG-RED") == (1, 0) and shop.store.level("CAP") == (1, 0)
    assert shop.emails() == [f"order-confirmation {order.number}"]
    assert shop.store.cart(order.cart_id or "").status is CartStatus.ORDERED
    assert [status for status, _ in order.history] == [OrderStatus.PENDING, OrderStatus.PAID]
    assert shop.events.seen == [("captured", order.number, OrderStatus.PAID), ("placed", order.number,
                                                                                OrderStatus.PAID)]


async def test_the_order_is_charged_its_total_under_a_key_of_its_own(shop: CommerceShop) -> None:
    placed = await shop.buy(("TEE", 2))
    (charge,) = shop.gateway.charges
    assert charge.reference == placed.order.number and charge.amount == placed.order.totals.total
    assert charge.idempotency_key == f"order-{placed.order.number}" and charge.email == "shopper@example.com"


async def test_totals_are_goods_less_discount_plus_shipping_with_the_tax_contained(shop: CommerceShop) -> None:
    shop.voucher("FIVEOFF", kind=VoucherKind.FIXED, value="5")
    totals = (await shop.buy(("TEE", 2), discount_code="fiveoff")).order.totals
    assert (totals.goods, totals.discount, totals.shipping) == (eur("40.00"), eur("5.00"), eur("4.90"))
    assert totals.total == eur("39.90") and totals.tax == eur("6.37")  # 19 % of 39.90 contained: 39.90 × 19/119


async def test_goods_above_the_free_shipping_threshold_ship_free(shop: CommerceShop) -> None:
    totals = (await shop.buy(("TEE", 5), ("CAP", 1))).order.totals
    assert totals.shipping == eur("0") and totals.total == eur("109.50")


async def test_an_order_keeps_the_names_and_prices_it_was_placed_with(shop: CommerceShop) -> None:
    placed = await shop.buy(("TEE", 1))
    product = shop.shelf.rows["product-3"]
    shop.shelf.put(replace(product, title="Renamed", variants=[replace(product.variants[0], price=eur("99.00"))]))
    (line,) = shop.order(placed.order.number).lines
    assert (line.name, line.unit_price) == ("Product 3 – Tee", eur("20.00"))


async def test_a_guest_order_can_be_seen_with_its_access_key_only(shop: CommerceShop) -> None:
    placed = await shop.buy(("TEE", 1))
    assert placed.access_key not in shop.store.state.access_key_hashes.values()  # kept hashed, never in clear
    seen = await shop.orders.order_for(placed.order.number, access_key=placed.access_key)
    assert seen.number == placed.order.number
    for key in (None, "guessed", placed.access_key[:-1]):
        with pytest.raises(NotFound):
            await shop.orders.order_for(placed.order.number, access_key=key)


async def test_a_payment_awaiting_the_bank_holds_the_stock_until_the_reservation_ends(shop: CommerceShop) -> None:
    placed = await shop.buy(("CAP", 2), token="tok_threeDSecure")
    order = shop.order(placed.order.number)
    assert order.status is OrderStatus.PENDING and order.payment.status is PaymentStatus.REQUIRES_ACTION
    assert order.payment.action_url is not None and placed.order.payment.action_url == order.payment.action_url
    assert order.reservation_expires_at == shop.clock.now + RESERVATION
    assert shop.store.level("CAP") == (2, 2) and shop.emails() == []


async def test_a_declined_card_cancels_the_order_releases_the_stock_and_reopens_the_cart(shop: CommerceShop) -> None:
    cart_id = await shop.cart_with(("CAP", 2))
    with pytest.raises(PaymentDeclined) as declined:
        await shop.checkout.place_order(shop.request(cart_id, token="tok_declined"))
    assert declined.value.reason == "card_declined"
    order = shop.order(declined.value.number)
    assert order.status is OrderStatus.CANCELED and order.payment.status is PaymentStatus.FAILED
    assert order.cart_id is None  # the cart may become another order
    assert shop.store.level("CAP") == (2, 0) and shop.emails() == []
    assert shop.store.cart(cart_id).status is CartStatus.OPEN
    assert ("declined", order.number, OrderStatus.CANCELED) in shop.events.seen
    again = await shop.checkout.place_order(shop.request(cart_id))
    assert again.order.status is OrderStatus.PAID and shop.store.level("CAP") == (0, 0)


async def test_a_declined_order_gives_its_voucher_use_back(shop: CommerceShop) -> None:
    shop.voucher("ONCE", usage_limit=1)
    with pytest.raises(PaymentDeclined):
        await shop.buy(("TEE", 1), token="tok_declined", discount_code="ONCE")
    assert shop.store.times_used("ONCE") == 0 and shop.store.state.redemptions == []
    assert (await shop.buy(("TEE", 1), discount_code="ONCE")).order.totals.discount == eur("2.00")


async def test_an_order_for_more_than_is_left_is_refused_and_holds_nothing(shop: CommerceShop) -> None:
    shop.voucher("TENOFF", usage_limit=5)
    cart_id = await shop.cart_with(("CAP", 2), ("TEE", 1))
    await shop.buy(("CAP", 1), token="tok_threeDSecure")  # another order holds one cap meanwhile
    with pytest.raises(OutOfStock) as short:
        await shop.checkout.place_order(shop.request(cart_id, discount_code="TENOFF"))
    assert (short.value.sku, short.value.requested, short.value.available) == ("CAP", 2, 1)
    # the transaction rolled back: no second order, the tee not held, the voucher not counted, the cart open
    assert len(shop.store.state.orders) == 1
    assert shop.store.level("TEE") == (5, 0) and shop.store.level("CAP") == (2, 1)
    assert shop.store.times_used("TENOFF") == 0
    assert shop.store.cart(cart_id).status is CartStatus.OPEN
    assert len(shop.gateway.charges) == 1  # nothing was charged for it


async def test_a_cart_with_an_item_no_longer_for_sale_is_refused(shop: CommerceShop) -> None:
    cart_id = await shop.cart_with(("CAP", 1), ("TEE", 1))
    shop.shelf.put(replace(shop.shelf.rows["product-3"], published=False))
    with pytest.raises(ItemsUnavailable) as gone:
        await shop.checkout.place_order(shop.request(cart_id))
    assert gone.value.skus == ["TEE"]
    assert shop.store.state.orders == {} and shop.store.level("CAP") == (2, 0)


async def test_an_empty_a_closed_or_someone_else_s_cart_places_no_order(shop: CommerceShop) -> None:
    empty = await shop.cart_with()
    with pytest.raises(InvalidValue) as refused:
        await shop.checkout.place_order(shop.request(empty))
    assert refused.value.field == "cart_id"
    theirs = await shop.cart_with(("TEE", 1), customer_id="u2")
    with pytest.raises(NotFound):
        await shop.checkout.place_order(shop.request(theirs, customer_id="u1"))
    with pytest.raises(NotFound):
        await shop.checkout.place_order(shop.request("no-such-cart"))
    ordered = await shop.cart_with(("TEE", 1))
    await shop.checkout.place_order(shop.request(ordered))
    with pytest.raises(CartClosed):
        await shop.checkout.place_order(shop.request(ordered))
    assert len(shop.store.state.orders) == 1 and shop.store.level("TEE") == (4, 0)


async def test_a_card_number_is_refused_before_anything_is_stored_or_sent(shop: CommerceShop) -> None:
    cart_id = await shop.cart_with(("TEE", 1))
    with pytest.raises(InvalidPaymentToken):
        await shop.checkout.place_order(shop.request(cart_id, token="4242 4242 4242 4242"))
    assert shop.store.state.orders == {} and shop.gateway.charges == []


@pytest.mark.parametrize(("method", "country"), [("overnight", "DE"), ("local", "DE")])
async def test_a_shipping_method_that_does_not_exist_or_ship_there_is_refused(shop: CommerceShop, method: str,
                                                                              country: str) -> None:
    cart_id = await shop.cart_with(("TEE", 1))
    request = replace(shop.request(cart_id), shipping_method=method, address=replace(ADDRESS, country=country))
    with pytest.raises(InvalidValue) as refused:
        await shop.checkout.place_order(request)
    assert refused.value.field == "shipping_method" and shop.store.state.orders == {}


async def test_a_voucher_takes_its_discount_and_counts_one_use(shop: CommerceShop) -> None:
    shop.voucher("TENOFF", value="10")
    cart_id = await shop.cart_with(("TEE", 2))
    await shop.carts.apply_discount(cart_id, "TENOFF", customer_id=None)
    order = (await shop.checkout.place_order(shop.request(cart_id))).order
    assert order.discount_code == "TENOFF" and order.totals.discount == eur("4.00")
    assert shop.store.times_used("TENOFF") == 1


async def test_a_code_given_at_checkout_overrides_the_cart_s(shop: CommerceShop) -> None:
    shop.voucher("TENOFF", value="10")
    shop.voucher("HALF", value="50")
    cart_id = await shop.cart_with(("TEE", 2))
    await shop.carts.apply_discount(cart_id, "TENOFF", customer_id=None)
    order = (await shop.checkout.place_order(shop.request(cart_id, discount_code="half"))).order
    assert order.discount_code == "HALF" and order.totals.discount == eur("20.00")
    assert shop.store.times_used("TENOFF") == 0


async def test_a_voucher_past_its_usage_limit_is_refused_and_places_no_order(shop: CommerceShop) -> None:
    shop.voucher("TWICE", usage_limit=2)
    for email in ("a@example.com", "b@example.com"):
        await shop.buy(("TEE", 1), discount_code="TWICE", email=email)
    with pytest.raises(VoucherNotApplicable) as used_up:
        await shop.buy(("TEE", 1), discount_code="TWICE", email="c@example.com")
    assert used_up.value.reason == "has been used up"
    assert shop.store.times_used("TWICE") == 2 and len(shop.store.state.orders) == 2
    assert shop.store.level("TEE") == (3, 0)


async def test_the_usage_limit_is_counted_by_the_store_not_the_voucher_that_was_read(shop: CommerceShop) -> None:
    """The limit is checked again where the use is counted, as the SQL counter's conditional update does: a
    voucher read before another order took its last use must not let this one through."""
    voucher = shop.voucher("ONCE", usage_limit=1)
    await shop.buy(("TEE", 1), discount_code="ONCE")
    async with shop.units.begin() as unit:
        with pytest.raises(VoucherNotApplicable):
            await unit.vouchers.redeem(voucher, customer_key="email:late@example.com", order_id=99)
    assert shop.store.times_used("ONCE") == 1


async def test_a_per_customer_limit_counts_an_account_or_a_guest_s_address(shop: CommerceShop) -> None:
    shop.voucher("WELCOME", per_customer_limit=1)
    await shop.buy(("TEE", 1), discount_code="WELCOME", email="Guest@Example.com")
    with pytest.raises(VoucherNotApplicable) as again:
        await shop.buy(("TEE", 1), discount_code="WELCOME", email="guest@example.com")  # the same address
    assert "as often as one customer may" in again.value.reason
    await shop.buy(("TEE", 1), discount_code="WELCOME", customer_id="u1", email="guest@example.com")
    with pytest.raises(VoucherNotApplicable):
        await shop.buy(("TEE", 1), discount_code="WELCOME", customer_id="u1", email="other@example.com")
    assert shop.store.times_used("WELCOME") == 2 and shop.store.level("TEE") == (3, 0)


@pytest.mark.parametrize(("change", "reason"), [
    ({"active": False}, "is no longer valid"),
    ({"ends_at_in": timedelta(0)}, "has expired"),
    ({"starts_at_in": timedelta(days=1)}, "is not valid yet"),
])
async def test_a_voucher_outside_its_time_or_switched_off_is_refused(shop: CommerceShop, change: dict[str, object],
                                                                     reason: str) -> None:
    voucher = shop.voucher("DATED")
    now = shop.clock.now
    if "active" in change:
        voucher = replace(voucher, active=False)
    if isinstance(ends := change.get("ends_at_in"), timedelta):
        voucher = replace(voucher, starts_at=now - timedelta(days=1), ends_at=now + ends)
    if isinstance(starts := change.get("starts_at_in"), timedelta):
        voucher = replace(voucher, starts_at=now + starts)
    shop.store.add_voucher(voucher)
    with pytest.raises(VoucherNotApplicable) as refused:
        await shop.buy(("TEE", 1), discount_code="DATED")
    assert refused.value.reason == reason and shop.store.state.orders == {}


async def test_selling_the_last_unit_turns_the_product_s_in_stock_flag_off(shop: CommerceShop) -> None:
    await shop.buy(("CAP", 2), token="tok_threeDSecure")
    assert shop.projection.flags[2] is False  # refreshed right after the commit
    assert shop.store.queued(STOCK_CHANGED) == [{"skus": ["CAP"]}]  # and left to the worker, should that fail


async def test_a_product_stays_in_stock_while_one_of_its_variants_is_left(shop: CommerceShop) -> None:
    await shop.buy(("MUG-BLUE", 1))
    assert shop.store.level("MUG-BLUE") == (0, 0) and shop.projection.flags[1] is True


async def test_an_order_that_rolled_back_changes_no_flag(shop: CommerceShop) -> None:
    cart_id = await shop.cart_with(("CAP", 2), ("TEE", 1))
    shop.store.set_stock("TEE", 0)
    with pytest.raises(OutOfStock):
        await shop.checkout.place_order(shop.request(cart_id))
    assert shop.projection.flags[2] is True and shop.store.queued(STOCK_CHANGED) == []


async def test_an_unreachable_gateway_leaves_the_order_pending_with_its_stock_held(shop: CommerceShop) -> None:
    placed = await shop.buy(("TEE", 1), token=UNAVAILABLE)
    order = shop.order(placed.order.number)
    assert order.status is OrderStatus.PENDING and order.payment.status is PaymentStatus.PENDING
    assert shop.store.level("TEE") == (5, 1) and order.reservation_expires_at is not None
    assert shop.events.seen == [("placed", order.number, OrderStatus.PENDING)]


async def test_a_payment_the_bank_is_still_processing_leaves_the_order_pending(shop: CommerceShop) -> None:
    placed = await shop.buy(("TEE", 1), token="tok_processing")
    order = shop.order(placed.order.number)
    assert order.status is OrderStatus.PENDING and order.payment.status is PaymentStatus.PENDING
    assert order.payment.reference == "pay_1" and shop.store.level("TEE") == (5, 1)
