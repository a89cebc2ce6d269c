"""A payment event pays an order only with exactly its total in its currency; anything else is an alert for staff
that leaves the order unpaid and survives whatever the payment does next."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shop.domain.money import Money
from shop.domain.orders import Payment, PaymentStatus
from shop.domain.payments import EventKind, GatewayEvent, payment_mismatch

TOTAL = Money.of("42.50", "EUR")


def _event(amount: Money | None) -> GatewayEvent:
    return GatewayEvent("evt_9", EventKind.PAYMENT_SUCCEEDED, "pi_9", amount, "100042")


@pytest.mark.parametrize("amount", [Money.of("42.5", "EUR"), Money.of("42.50", "EUR")])
def test_exactly_the_total_pays(amount: Money) -> None:
    assert payment_mismatch(_event(amount), TOTAL) is None


@pytest.mark.parametrize(("amount", "said"), [
    (Money.of("42.49", "EUR"), "brought 42.49 EUR"),
    (Money.of("42.51", "EUR"), "brought 42.51 EUR"),
    (Money.of("42.50", "USD"), "brought 42.50 USD"),  # the same figure in another currency is other money
    (None, "brought no amount"),
])
def test_any_other_amount_or_currency_is_a_mismatch_that_says_what_came(amount: Money | None, said: str) -> None:
    alert = payment_mismatch(_event(amount), TOTAL)
    assert alert is not None and said in alert and "pi_9" in alert and "evt_9" in alert and "42.50 EUR" in alert


@pytest.mark.parametrize(("before", "after"), [
    (PaymentStatus.PENDING, PaymentStatus.MISMATCHED),
    (PaymentStatus.REQUIRES_ACTION, PaymentStatus.MISMATCHED),
    (PaymentStatus.CANCELED, PaymentStatus.MISMATCHED),
    (PaymentStatus.FAILED, PaymentStatus.MISMATCHED),
    (PaymentStatus.CAPTURED, PaymentStatus.CAPTURED),  # the order's money is in: it stays paid
    (PaymentStatus.REFUNDED, PaymentStatus.REFUNDED),
])
def test_a_mismatch_leaves_an_unpaid_payment_mismatched_and_a_paid_one_paid(before: PaymentStatus,
                                                                           after: PaymentStatus) -> None:
    payment = Payment(provider="test", status=before, amount=TOTAL)
    assert payment.mismatched("one").status is after


def test_alerts_add_up_and_outlive_the_payment_s_next_states() -> None:
    payment = Payment(provider="test", status=PaymentStatus.REQUIRES_ACTION, amount=TOTAL)
    flagged = payment.mismatched("first").mismatched("second")
    assert flagged.alert == "first\nsecond"
    assert replace(flagged, status=PaymentStatus.CAPTURED).alert == "first\nsecond"
