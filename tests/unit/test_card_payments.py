"""CardPayments on the in-memory main store: what the buyer's browser must do next for an order whose payment
waits for them, and settling a payment the customer finished before any webhook came."""

from __future__ import annotations

import pytest
from commerce_shop import CommerceShop
from payment_fakes import FakeGateway

from shop.domain.errors import NotFound
from shop.domain.orders import Order, OrderStatus, PaymentStatus
from shop.domain.payments import ChargeRequest, ChargeResult, ChargeStatus
from shop.services.card_payments import BrowserConfirmed, CardForm, CardPayments


class BrowserChallengeGateway(FakeGateway):
    """A gateway whose customer authenticates through its script in the shop's page (as Stripe.js does): no page
    to send them to, a client secret instead."""

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        result = await super().charge(request)
        return ChargeResult(result.status, result.payment_ref, decline_reason=result.decline_reason)

    async def client_secret(self, payment_ref: str) -> str | None:
        self._reachable()
        return f"{payment_ref}_secret"


def card_payments(shop: CommerceShop) -> CardPayments:
    return CardPayments(form=CardForm(shop.gateway.name), gateway=shop.gateway, orders=shop.orders,
                        payments=shop.payments)


async def awaiting_the_customer(shop: CommerceShop) -> tuple[Order, str]:
    """An order whose payment waits for 3-D Secure, and its guest access key."""
    placed = await shop.buy(("CAP", 1), token="tok_threeDSecure")
    return shop.order(placed.order.number), placed.access_key


def answered(shop: CommerceShop, order: Order, status: ChargeStatus) -> None:
    assert order.payment.reference is not None
    shop.gateway.payments[order.payment.reference].status = status


@pytest.fixture
def shop() -> CommerceShop:
    return CommerceShop.build()


async def test_the_buyer_is_sent_to_the_bank_s_page_while_the_payment_waits(shop: CommerceShop) -> None:
    order, key = await awaiting_the_customer(shop)
    step = await card_payments(shop).next_action(order.number, customer_id=None, access_key=key)
    assert step.redirect_url == order.payment.action_url and step.redirect_url is not None
    assert step.client_secret is None and step.order.status is OrderStatus.PENDING


async def test_nobody_but_the_buyer_learns_the_next_step(shop: CommerceShop) -> None:
    order, key = await awaiting_the_customer(shop)
    for customer_id, access_key in ((None, None), ("u2", None), (None, key[:-1] + "x")):
        with pytest.raises(NotFound):
            await card_payments(shop).next_action(order.number, customer_id=customer_id, access_key=access_key)
    assert shop.gateway.status_asked == []


async def test_a_payment_the_customer_finished_before_its_webhook_is_settled_there_and_then(
        shop: CommerceShop) -> None:
    order, key = await awaiting_the_customer(shop)
    answered(shop, order, ChargeStatus.SUCCEEDED)
    step = await card_payments(shop).next_action(order.number, customer_id=None, access_key=key)
    assert step.order.status is OrderStatus.PAID and step.redirect_url is None
    assert shop.order(order.number).status is OrderStatus.PAID and shop.store.level("CAP") == (1, 0)
    assert shop.emails() == [f"order-confirmation {order.number}"]


async def test_a_challenge_the_customer_failed_cancels_the_order(shop: CommerceShop) -> None:
    order, key = await awaiting_the_customer(shop)
    answered(shop, order, ChargeStatus.DECLINED)
    step = await card_payments(shop).next_action(order.number, customer_id=None, access_key=key)
    assert step.order.status is OrderStatus.CANCELED and step.order.payment.status is PaymentStatus.FAILED
    assert shop.store.level("CAP") == (2, 0)


@pytest.mark.parametrize("unreachable", [False, True])
async def test_an_undecided_or_unreachable_gateway_leaves_the_order_waiting(shop: CommerceShop,
                                                                          unreachable: bool) -> None:
    order, key = await awaiting_the_customer(shop)
    shop.gateway.unavailable = unreachable
    step = await card_payments(shop).next_action(order.number, customer_id=None, access_key=key)
    assert step.order.status is OrderStatus.PENDING and step.redirect_url == order.payment.action_url
    assert shop.order(order.number).payment.status is PaymentStatus.REQUIRES_ACTION


async def test_an_order_already_settled_is_not_asked_about_again(shop: CommerceShop) -> None:
    placed = await shop.buy(("CAP", 1))
    step = await card_payments(shop).next_action(placed.order.number, customer_id=None,
                                                 access_key=placed.access_key)
    assert step.order.status is OrderStatus.PAID and step.redirect_url is step.client_secret is None
    assert shop.gateway.status_asked == []


async def test_a_gateway_challenging_in_the_page_gives_its_buyer_the_client_secret() -> None:
    shop = CommerceShop.build(BrowserChallengeGateway())
    assert isinstance(shop.gateway, BrowserConfirmed)
    order, key = await awaiting_the_customer(shop)
    assert order.payment.action_url is None
    step = await card_payments(shop).next_action(order.number, customer_id=None, access_key=key)
    assert step.client_secret == f"{order.payment.reference}_secret" and step.redirect_url is None
    shop.gateway.unavailable = True  # the page asks again later; the webhook may settle it meanwhile
    later = await card_payments(shop).next_action(order.number, customer_id=None, access_key=key)
    assert later.client_secret is None and later.order.status is OrderStatus.PENDING

