"""CartService on the in-memory main store: lines by SKU within the stock, prices only from the catalogue, a
customer's cart theirs alone, a discount code that must apply, and a guest cart folded in at sign-in."""

from __future__ import annotations

from dataclasses import replace

import pytest
from commerce_shop import CommerceShop, eur

from shop.domain.cart import CartClosed, CartStatus
from shop.domain.discounts import VoucherKind, VoucherNotApplicable
from shop.domain.errors import InvalidValue, NotFound, OutOfStock


@pytest.fixture
def shop() -> CommerceShop:
    return CommerceShop.build()


async def test_a_customer_asking_for_a_cart_again_gets_the_open_one_and_a_guest_a_new_one(shop: CommerceShop) -> None:
    first, made = await shop.carts.create(customer_id="u1")
    again, made_again = await shop.carts.create(customer_id="u1")
    assert made and not made_again and again.cart.id == first.cart.id
    guest, _ = await shop.carts.create(customer_id=None)
    other_guest, _ = await shop.carts.create(customer_id=None)
    assert guest.cart.id != other_guest.cart.id
    assert len(guest.cart.id) >= 32  # unguessable: whoever holds a guest cart's id holds the cart


async def test_lines_are_priced_from_the_catalogue_now_never_from_what_was_stored(shop: CommerceShop) -> None:
    cart_id = await shop.cart_with(("CAP", 2), ("TEE", 1))
    view = await shop.carts.view(cart_id, customer_id=None)
    assert [(line.sku, line.quantity, line.total) for line in view.lines] == [
        ("CAP", 2, eur("19.00")), ("TEE", 1, eur("20.00"))]
    assert view.goods == eur("39.00")
    product = shop.shelf.rows["product-2"]
    shop.shelf.put(replace(product, variants=[replace(product.variants[0], price=eur("7.00"))]))
    assert (await shop.carts.view(cart_id, customer_id=None)).goods == eur("34.00")


async def test_adding_a_sku_already_in_the_cart_raises_its_line(shop: CommerceShop) -> None:
    cart_id = await shop.cart_with(("MUG-RED", 1), ("MUG-RED", 2))
    stored = shop.store.cart(cart_id)
    assert [(line.sku, line.quantity) for line in stored.lines] == [("MUG-RED", 3)]


async def test_a_sku_not_for_sale_is_refused_naming_the_field(shop: CommerceShop) -> None:
    cart_id = await shop.cart_with()
    with pytest.raises(InvalidValue) as unknown:
        await shop.carts.add_item(cart_id, sku="NO-SUCH", quantity=1, customer_id=None)
    assert unknown.value.field == "sku"
    shop.shelf.put(replace(shop.shelf.rows["product-3"], published=False))
    with pytest.raises(InvalidValue):
        await shop.carts.add_item(cart_id, sku="TEE", quantity=1, customer_id=None)
    assert shop.store.cart(cart_id).lines == []


async def test_a_cart_cannot_hold_more_than_is_in_stock(shop: CommerceShop) -> None:
    cart_id = await shop.cart_with(("CAP", 2))
    with pytest.raises(OutOfStock) as short:
        await shop.carts.add_item(cart_id, sku="CAP", quantity=1, customer_id=None)
    assert (short.value.requested, short.value.available) == (3, 2)
    line = shop.store.cart(cart_id).lines[0]
    with pytest.raises(OutOfStock):
        await shop.carts.change_item(cart_id, line.id, quantity=3, customer_id=None)
    assert shop.store.cart(cart_id).lines[0].quantity == 2  # a refused change is not stored


async def test_what_other_orders_hold_is_not_available_to_a_cart(shop: CommerceShop) -> None:
    await shop.buy(("CAP", 1), token="tok_threeDSecure")  # pending: its unit is reserved
    cart_id = await shop.cart_with()
    with pytest.raises(OutOfStock) as short:
        await shop.carts.add_item(cart_id, sku="CAP", quantity=2, customer_id=None)
    assert short.value.available == 1
    view = await shop.carts.add_item(cart_id, sku="CAP", quantity=1, customer_id=None)
    assert view.stock == {"CAP": 1}


async def test_lines_change_and_go(shop: CommerceShop) -> None:
    cart_id = await shop.cart_with(("TEE", 1), ("CAP", 1))
    tee, cap = shop.store.cart(cart_id).lines
    await shop.carts.change_item(cart_id, tee.id, quantity=4, customer_id=None)
    view = await shop.carts.remove_item(cart_id, cap.id, customer_id=None)
    assert [(line.sku, line.quantity) for line in view.lines] == [("TEE", 4)]
    assert [(line.sku, line.quantity) for line in shop.store.cart(cart_id).lines] == [("TEE", 4)]
    with pytest.raises(NotFound):
        await shop.carts.remove_item(cart_id, cap.id, customer_id=None)


async def test_a_customer_s_cart_does_not_exist_for_anyone_else(shop: CommerceShop) -> None:
    cart_id = await shop.cart_with(("TEE", 1), customer_id="u1")
    for someone in (None, "u2"):
        with pytest.raises(NotFound):
            await shop.carts.view(cart_id, customer_id=someone)
        with pytest.raises(NotFound):
            await shop.carts.add_item(cart_id, sku="CAP", quantity=1, customer_id=someone)
    assert (await shop.carts.view(cart_id, customer_id="u1")).goods == eur("20.00")


@pytest.mark.parametrize("cart_id", ["short", "x" * 41, "never-made-cart-id"])
async def test_an_unknown_or_malformed_cart_id_is_not_found(shop: CommerceShop, cart_id: str) -> None:
    with pytest.raises(NotFound):
        await shop.carts.view(cart_id, customer_id=None)


async def test_a_line_whose_product_was_withdrawn_is_shown_unavailable_and_not_counted(shop: CommerceShop) -> None:
    cart_id = await shop.cart_with(("TEE", 1), ("CAP", 1))
    shop.shelf.put(replace(shop.shelf.rows["product-3"], published=False))
    view = await shop.carts.view(cart_id, customer_id=None)
    tee = next(line for line in view.cart.lines if line.sku == "TEE")
    assert view.unavailable == [tee.id] and [line.sku for line in view.lines] == ["CAP"]
    assert view.goods == eur("9.50")


async def test_a_discount_code_is_stored_normalized_and_taken_off_the_goods(shop: CommerceShop) -> None:
    shop.voucher("TENOFF", value="10")
    cart_id = await shop.cart_with(("TEE", 2))
    view = await shop.carts.apply_discount(cart_id, "  tenoff ", customer_id=None)
    assert view.cart.discount_code == "TENOFF" and shop.store.cart(cart_id).discount_code == "TENOFF"
    assert (view.goods, view.discount, view.subtotal) == (eur("40.00"), eur("4.00"), eur("36.00"))
    cleared = await shop.carts.apply_discount(cart_id, None, customer_id=None)
    assert cleared.discount == eur("0") and shop.store.cart(cart_id).discount_code is None


async def test_a_code_that_cannot_apply_is_refused_and_not_stored(shop: CommerceShop) -> None:
    shop.store.add_voucher(replace(shop.voucher("BIGSPEND", kind=VoucherKind.FIXED, value="5"),
                                   min_order=eur("50.00")))
    cart_id = await shop.cart_with(("TEE", 1))
    with pytest.raises(VoucherNotApplicable) as small:
        await shop.carts.apply_discount(cart_id, "BIGSPEND", customer_id=None)
    assert "at least 50.00" in small.value.reason
    with pytest.raises(VoucherNotApplicable) as unknown:
        await shop.carts.apply_discount(cart_id, "NOSUCHCODE", customer_id=None)
    assert unknown.value.reason == "does not exist"
    with pytest.raises(InvalidValue):
        await shop.carts.apply_discount(cart_id, "a b", customer_id=None)
    assert shop.store.cart(cart_id).discount_code is None


async def test_a_stored_code_that_stopped_applying_is_shown_as_a_problem_not_an_error(shop: CommerceShop) -> None:
    shop.voucher("TENOFF")
    cart_id = await shop.cart_with(("TEE", 1))
    await shop.carts.apply_discount(cart_id, "TENOFF", customer_id=None)
    await shop.vouchers.deactivate("tenoff")
    view = await shop.carts.view(cart_id, customer_id=None)
    assert view.discount == eur("0") and view.discount_problem == "is no longer valid"


async def test_a_guest_cart_is_folded_into_the_customer_s_open_cart(shop: CommerceShop) -> None:
    mine = await shop.cart_with(("TEE", 1), ("CAP", 1), customer_id="u1")
    shop.voucher("TENOFF")
    guest = await shop.cart_with(("CAP", 1), ("MUG-RED", 2))
    await shop.carts.apply_discount(guest, "TENOFF", customer_id=None)
    view = await shop.carts.merge(guest, customer_id="u1")
    assert view.cart.id == mine
    assert sorted((line.sku, line.quantity) for line in shop.store.cart(mine).lines) == [
        ("CAP", 2), ("MUG-RED", 2), ("TEE", 1)]
    assert shop.store.cart(mine).discount_code == "TENOFF"  # the customer's cart had none
    assert shop.store.cart(guest).status is CartStatus.MERGED
    with pytest.raises(CartClosed):
        await shop.carts.add_item(guest, sku="TEE", quantity=1, customer_id=None)


async def test_a_guest_cart_becomes_the_customer_s_when_they_have_none(shop: CommerceShop) -> None:
    guest = await shop.cart_with(("TEE", 1))
    view = await shop.carts.merge(guest, customer_id="u1")
    assert view.cart.id == guest and shop.store.cart(guest).customer_id == "u1"
    with pytest.raises(NotFound):
        await shop.carts.view(guest, customer_id=None)  # no longer the guest's


async def test_another_customer_s_cart_cannot_be_merged(shop: CommerceShop) -> None:
    theirs = await shop.cart_with(("TEE", 1), customer_id="u2")
    with pytest.raises(NotFound):
        await shop.carts.merge(theirs, customer_id="u1")
    assert shop.store.cart(theirs).customer_id == "u2"
