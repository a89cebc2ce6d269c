"""Voucher administration on the in-memory main store: staff create codes within the rules and end them; what an
ended voucher means for carts and orders."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from commerce_shop import CommerceShop, eur

from shop.domain.discounts import VoucherKind, VoucherNotApplicable
from shop.domain.errors import Conflict, InvalidValue, NotFound
from shop.services.vouchers import VoucherDraft


@pytest.fixture
def shop() -> CommerceShop:
    return CommerceShop.build()


async def test_a_voucher_is_stored_under_its_normalized_code_in_the_shop_s_currency(shop: CommerceShop) -> None:
    created = await shop.vouchers.create(VoucherDraft(code=" spring-10 ", kind="percentage", value="10",
                                                      min_order="30", usage_limit=100, per_customer_limit=1))
    stored = shop.store.state.vouchers["SPRING-10"]
    assert stored == created and stored.times_used == 0
    assert (stored.kind, stored.value, stored.currency) == (VoucherKind.PERCENTAGE, Decimal("10"), "EUR")
    assert stored.min_order == eur("30") and (stored.usage_limit, stored.per_customer_limit) == (100, 1)
    assert [v.code for v in await shop.vouchers.all()] == ["SPRING-10"]


async def test_a_code_that_is_taken_whatever_its_case_is_a_conflict(shop: CommerceShop) -> None:
    await shop.vouchers.create(VoucherDraft(code="SPRING", kind="fixed", value="5"))
    with pytest.raises(Conflict):
        await shop.vouchers.create(VoucherDraft(code="spring", kind="percentage", value="50"))
    assert shop.store.state.vouchers["SPRING"].kind is VoucherKind.FIXED


@pytest.mark.parametrize(("draft", "field"), [
    (VoucherDraft(code="X1", kind="fixed", value="5"), "code"),
    (VoucherDraft(code="FREE", kind="gift", value="5"), "kind"),
    (VoucherDraft(code="HUGE", kind="percentage", value="150"), "value"),
    (VoucherDraft(code="NEG", kind="fixed", value="-5"), "value"),
    (VoucherDraft(code="CENTS", kind="fixed", value="5.001"), "value"),
    (VoucherDraft(code="RICH", kind="fixed", value="1000000001"), "value"),
    (VoucherDraft(code="MIN", kind="fixed", value="5", min_order="1000000001"), "min_order"),
    (VoucherDraft(code="NAIVE", kind="fixed", value="5", starts_at=datetime(2030, 1, 1)), "starts_at"),
    (VoucherDraft(code="LIMIT", kind="fixed", value="5", usage_limit=0), "usage_limit"),
])
async def test_a_bad_draft_is_refused_naming_its_field(shop: CommerceShop, draft: VoucherDraft, field: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        await shop.vouchers.create(draft)
    assert refused.value.field == field
    assert shop.store.state.vouchers == {}


async def test_a_voucher_must_end_after_it_starts(shop: CommerceShop) -> None:
    start = shop.clock.now
    with pytest.raises(InvalidValue) as refused:
        await shop.vouchers.create(VoucherDraft(code="BACKWARDS", kind="fixed", value="5", starts_at=start,
                                                ends_at=start - timedelta(days=1)))
    assert refused.value.field == "ends_at"


async def test_an_ended_voucher_takes_nothing_off_new_orders_but_orders_keep_theirs(shop: CommerceShop) -> None:
    await shop.vouchers.create(VoucherDraft(code="TENOFF", kind="percentage", value="10"))
    kept = (await shop.buy(("TEE", 1), discount_code="TENOFF")).order
    await shop.vouchers.deactivate(" tenoff ")
    with pytest.raises(VoucherNotApplicable) as refused:
        await shop.buy(("TEE", 1), discount_code="TENOFF")
    assert refused.value.reason == "is no longer valid"
    assert shop.order(kept.number).totals.discount == eur("2.00")


async def test_ending_a_code_that_does_not_exist_is_not_found(shop: CommerceShop) -> None:
    with pytest.raises(NotFound):
        await shop.vouchers.deactivate("NOSUCH")
