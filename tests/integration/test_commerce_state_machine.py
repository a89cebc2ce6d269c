"""The shop under random use on a real database: carts, checkout with every kind of card, 3-D Secure, reservations
running out, staff moving orders, refunds and the worker. After every step the stored stock, orders, payments and
voucher counts must agree with each other and with what the rules of `shop.domain.orders` predict.

Hypothesis drives the real services synchronously, each coroutine on an event loop of this test's own: rules of a
state machine cannot await, and the session's loop of pytest-asyncio must not be re-entered.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, select

from shop.bootstrap import Commerce, build_catalog, build_commerce, build_databases, build_gateways
from shop.config import Settings
from shop.domain.cart import CartClosed, CartStatus
from shop.domain.catalog import Product, Variant
from shop.domain.discounts import VoucherNotApplicable
from shop.domain.errors import DomainError, InvalidValue, OutOfStock
from shop.domain.inventory import StockLevel
from shop.domain.money import Money
from shop.domain.orders import IllegalTransition, OrderStatus, PaymentStatus, check_transition
from shop.domain.payments import ChargeRequest, ChargeResult, EventKind
from shop.domain.pricing import Address
from shop.infrastructure.db.engines import Databases, Store
from shop.infrastructure.db.main.outbox import SqlOutbox
from shop.infrastructure.db.main.stock import SqlStock
from shop.infrastructure.db.main.tables import (
    cart_lines,
    carts,
    idempotency_keys,
    order_lines,
    order_refunds,
    order_shipments,
    orders,
    outbox,
    payment_events,
    stock_levels,
    voucher_redemptions,
    vouchers,
)
from shop.infrastructure.db.posts.catalog import PostsCatalog
from shop.infrastructure.db.posts.tables import products, variants
from shop.infrastructure.db.types import utcnow
from shop.infrastructure.payments.test_gateway import TestGateway
from shop.services.checkout import CheckoutRequest, PaymentDeclined
from shop.services.commerce_jobs import REFUND, CommerceJobs
from shop.services.vouchers import VoucherDraft
from tests.conftest import make_settings, migrate_all
from tests.databases import DatabaseFactory

T = TypeVar("T")

# small stock, so that carts and orders run out of it
STOCK = {"SM-CAP": 2, "SM-MUG": 3, "SM-TEE": 5}
PRICES = {"SM-CAP": "9.50", "SM-MUG": "12.00", "SM-TEE": "20.00"}
VOUCHER, VOUCHER_LIMIT = "MACHINE10", 2
TOKENS = ("tok_visa", "tok_chargeDeclined", "tok_threeDSecure")
STAFF = {"fulfil": OrderStatus.FULFILLED, "ship": OrderStatus.SHIPPED, "deliver": OrderStatus.DELIVERED,
         "cancel": OrderStatus.CANCELED, "refund": OrderStatus.REFUNDED}
NEXT = {OrderStatus.PAID: "fulfil", OrderStatus.FULFILLED: "ship", OrderStatus.SHIPPED: "deliver"}  # staff
LIVE = frozenset({OrderStatus.PAID, OrderStatus.FULFILLED, OrderStatus.SHIPPED, OrderStatus.DELIVERED})
ADDRESS = Address.of(name="Ada Lovelace", line1="Hauptstraße 1", city="Berlin", postal_code="10115", country="DE")
# 20 runs of up to 40 steps: 15-40 s per database on two cores. Shrinking a failure on a real database takes
# many minutes, so the failing steps are reported as found; add Phase.shrink locally for a shorter story.
MACHINE_SETTINGS = settings(max_examples=20, stateful_step_count=40, deadline=None,
                            phases=[Phase.explicit, Phase.reuse, Phase.generate],
                            suppress_health_check=[HealthCheck.too_slow])


def legal(current: OrderStatus, wanted: OrderStatus) -> bool:
    """What the domain says, asked the way the services ask it."""
    try:
        check_transition("any", current, wanted)
    except IllegalTransition:
        return False
    return True


@dataclass
class Shop:
    """The real commerce services over one migrated database, driven from a loop of the test's own."""

    loop: asyncio.AbstractEventLoop
    settings: Settings
    databases: Databases
    catalog: PostsCatalog
    commerce: Commerce
    jobs: CommerceJobs
    main: Store = field(init=False)

    def __post_init__(self) -> None:
        self.main = self.databases.store("main")

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    async def reset(self) -> None:
        """Every example starts from full shelves, no carts, no orders and an unused voucher."""
        async with self.main.write() as conn:
            for table in (order_refunds, order_shipments, order_lines, orders, cart_lines, carts,
                          voucher_redemptions, vouchers, payment_events, outbox, idempotency_keys):
                await conn.execute(delete(table))
        stock = SqlStock(self.main)
        await stock.set_levels([StockLevel(sku, on_hand) for sku, on_hand in STOCK.items()])
        await self.commerce.flags.refresh(sorted(STOCK))
        await self.commerce.vouchers.create(VoucherDraft(code=VOUCHER, kind="percentage", value="10",
                                                         usage_limit=VOUCHER_LIMIT))


async def open_shop(loop: asyncio.AbstractEventLoop, backend: str, db_factory: DatabaseFactory) -> Shop:
    shop_settings = make_settings(await db_factory.url(backend, "machine"), secret_key="state-machine-" + "k" * 32,
                                  db_pool_size=4)
    await migrate_all(shop_settings)
    databases = build_databases(shop_settings)
    catalog = build_catalog(shop_settings, databases)
    await catalog.writer.add_products([
        Product(id=n, slug=sku.lower(), title=f"Machine {sku}", description="For the state machine.",
                category_id=None, variants=[Variant(sku=sku, price=Money.of(PRICES[sku], "EUR"), weight_grams=300)])
        for n, sku in enumerate(sorted(STOCK), start=1)], available=STOCK)
    commerce = build_commerce(shop_settings, databases, catalog=catalog)
    jobs = CommerceJobs(payments=commerce.payments, outbox=SqlOutbox(databases.store("main")), flags=commerce.flags,
                        every=timedelta(0))  # every round the machine asks for runs
    return Shop(loop=loop, settings=shop_settings, databases=databases, catalog=catalog, commerce=commerce, jobs=jobs)


@dataclass
class Stored:
    """What the main store holds, read in one go after a step."""

    levels: dict[str, tuple[int, int]]  # sku → (on_hand, reserved)
    status: dict[str, OrderStatus]
    payment: dict[str, PaymentStatus]
    history: dict[str, list[OrderStatus]]
    discount: dict[str, str | None]
    units: dict[str, Counter[str]]  # order number → units per SKU
    refund_jobs: set[str]  # orders with a refund the worker has yet to make
    cart_status: dict[str, CartStatus]
    voucher_used: int
    redeemed_by: set[str]  # order numbers holding a voucher redemption


async def read_store(store: Store) -> Stored:
    async with store.read() as conn:
        levels = {r.sku: (r.on_hand, r.reserved) for r in await conn.execute(select(stock_levels))}
        rows = (await conn.execute(select(orders.c.id, orders.c.number, orders.c.status, orders.c.payment_status,
                                          orders.c.history, orders.c.discount_code))).all()
        number_of = {r.id: r.number for r in rows}
        units: dict[str, Counter[str]] = {r.number: Counter() for r in rows}
        for line in await conn.execute(select(order_lines.c.order_id, order_lines.c.sku, order_lines.c.quantity)):
            units[number_of[line.order_id]][line.sku] += line.quantity
        jobs = await conn.execute(select(outbox.c.payload).where(
            outbox.c.kind == REFUND, outbox.c.sent_at.is_(None), outbox.c.dead_at.is_(None)))
        cart_rows = await conn.execute(select(carts.c.id, carts.c.status))
        used = (await conn.execute(select(vouchers.c.times_used).where(vouchers.c.code == VOUCHER))).scalar_one()
        redeemed = await conn.execute(select(voucher_redemptions.c.order_id))
        return Stored(
            levels=levels, status={r.number: OrderStatus(r.status) for r in rows},
            payment={r.number: PaymentStatus(r.payment_status) for r in rows},
            history={r.number: [OrderStatus(status) for status, _ in r.history] for r in rows},
            discount={r.number: r.discount_code for r in rows}, units=units,
            refund_jobs={job.payload["order"] for job in jobs},
            cart_status={r.id: CartStatus(r.status) for r in cart_rows}, voucher_used=used,
            redeemed_by={number_of[r.order_id] for r in redeemed})


async def in_stock_flags(store: Store) -> dict[str, bool]:
    async with store.read() as conn:
        rows = await conn.execute(select(variants.c.sku, products.c.in_stock)
                                  .join(products, products.c.id == variants.c.product_id))
        return {r.sku: bool(r.in_stock) for r in rows}


class CommerceMachine(RuleBasedStateMachine):
    """A model of what each order and cart should be; the store is compared with it after every step."""

    shop: ClassVar[Shop]

    cart_ids = Bundle("carts")
    order_numbers = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.shop.run(self.shop.reset())
        self.cart_lines: dict[str, Counter[str]] = {}
        self.cart_status: dict[str, CartStatus] = {}
        self.status: dict[str, OrderStatus] = {}
        self.payment: dict[str, PaymentStatus] = {}
        self.secure_refs: dict[str, str] = {}  # 3-D Secure orders → their payment reference
        self.authenticated: set[str] = set()
        self.holding_voucher: set[str] = set()  # orders that count against the voucher's usage limit
        self.levels = {sku: (on_hand, 0) for sku, on_hand in STOCK.items()}  # refreshed after every step

    # --- helpers ---------------------------------------------------------------------------------------------

    def attempt(self, work: Coroutine[Any, Any, T]) -> tuple[T | None, DomainError | None]:
        try:
            return self.shop.run(work), None
        except DomainError as error:
            return None, error

    def available(self) -> dict[str, int]:
        """Units that can be bought now, as the invariant read them after the last step."""
        return {sku: on_hand - reserved for sku, (on_hand, reserved) in self.levels.items()}

    # --- shoppers --------------------------------------------------------------------------------------------

    @rule(target=cart_ids, sku=st.sampled_from(sorted(STOCK)))
    def new_cart(self, sku: str) -> str:
        """A shopper starts a cart with one unit of something (it stays empty if that is sold out)."""
        view, made = self.shop.run(self.shop.commerce.carts.create(customer_id=None))
        assert made and view.cart.empty
        self.cart_lines[view.cart.id] = Counter()
        self.cart_status[view.cart.id] = CartStatus.OPEN
        self.add_to_cart(view.cart.id, sku, 1)
        return view.cart.id

    @rule(cart=cart_ids, sku=st.sampled_from(sorted(STOCK)), quantity=st.integers(1, 3))
    def add_to_cart(self, cart: str, sku: str, quantity: int) -> None:
        wanted = self.cart_lines[cart][sku] + quantity
        available = self.available()[sku]
        view, error = self.attempt(self.shop.commerce.carts.add_item(cart, sku=sku, quantity=quantity,
                                                                     customer_id=None))
        if self.cart_status[cart] is not CartStatus.OPEN:
            assert isinstance(error, CartClosed), error
        elif wanted > available:
            assert isinstance(error, OutOfStock), error
            assert (error.sku, error.requested, error.available) == (sku, wanted, available)
        else:
            assert error is None, error
            assert view is not None and view.stock[sku] == available
            self.cart_lines[cart][sku] = wanted
            assert {line.sku: line.quantity for line in view.cart.lines} == dict(self.cart_lines[cart])

    @rule(target=order_numbers, cart=cart_ids, token=st.sampled_from(TOKENS),
          use_voucher=st.sampled_from([False, False, True]))  # one checkout in three tries the voucher
    def checkout(self, cart: str, token: str, use_voucher: bool) -> object:
        lines = self.cart_lines[cart]
        available = self.available()
        short = sorted(sku for sku, wanted in lines.items() if wanted > available[sku])
        request = CheckoutRequest(cart_id=cart, email="shopper@example.com", address=ADDRESS,
                                  shipping_method="standard", payment_token=token,
                                  discount_code=VOUCHER.lower() if use_voucher else None)
        placed, error = self.attempt(self.shop.commerce.checkout.place_order(request))
        # the checks come in this order: an empty cart, the voucher, a closed cart, then stock
        if not lines:
            assert isinstance(error, InvalidValue) and error.field == "cart_id", error
            return multiple()
        if use_voucher and len(self.holding_voucher) >= VOUCHER_LIMIT:
            assert isinstance(error, VoucherNotApplicable) and error.reason == "has been used up", error
            return multiple()
        if self.cart_status[cart] is not CartStatus.OPEN:
            assert isinstance(error, CartClosed), error
            return multiple()
        if short:
            assert isinstance(error, OutOfStock) and error.sku == short[0], error
            return multiple()
        if token == "tok_chargeDeclined":
            assert isinstance(error, PaymentDeclined), error
            number = error.number
            # the order is canceled, its voucher given back and its cart open again for another card
            self.status[number], self.payment[number] = OrderStatus.CANCELED, PaymentStatus.FAILED
            return number
        assert error is None and placed is not None, error
        number = placed.order.number
        assert {line.sku: line.quantity for line in placed.order.lines} == dict(lines)
        self.cart_status[cart] = CartStatus.ORDERED
        if token == "tok_visa":
            self.status[number], self.payment[number] = OrderStatus.PAID, PaymentStatus.CAPTURED
        else:
            self.status[number], self.payment[number] = OrderStatus.PENDING, PaymentStatus.REQUIRES_ACTION
            assert placed.order.payment.reference is not None
            self.secure_refs[number] = placed.order.payment.reference
        if use_voucher:
            self.holding_voucher.add(number)
        return number

    @precondition(lambda self: bool(set(self.secure_refs) - self.authenticated))
    @rule(data=st.data())
    def authenticate(self, data: st.DataObject) -> None:
        """The customer passes 3-D Secure, in time or after the order was given up."""
        number = data.draw(st.sampled_from(sorted(set(self.secure_refs) - self.authenticated)), label="order")
        outcome = self.shop.run(self.shop.commerce.payments.authenticate_test_payment(self.secure_refs[number]))
        self.authenticated.add(number)
        assert outcome.applied and outcome.order == number
        if self.status[number] is OrderStatus.PENDING:
            self.status[number], self.payment[number] = OrderStatus.PAID, PaymentStatus.CAPTURED
        else:
            assert self.status[number] is OrderStatus.CANCELED
            self.payment[number] = PaymentStatus.CAPTURED  # money for an order given up: the worker gives it back

    @precondition(lambda self: bool(self.authenticated))
    @rule(data=st.data())
    def the_bank_repeats_itself(self, data: st.DataObject) -> None:
        """The same signed event arrives again: it changes nothing."""
        number = data.draw(st.sampled_from(sorted(self.authenticated)), label="order")
        outcome = self.shop.run(self.shop.commerce.payments.authenticate_test_payment(self.secure_refs[number]))
        assert not outcome.applied and outcome.order == number

    @precondition(lambda self: bool(self.secure_refs))
    @rule(data=st.data(), wrong=st.sampled_from(["amount", "currency"]))
    def money_that_is_not_the_orders_arrives(self, data: st.DataObject, wrong: str) -> None:
        """A signed payment event for an order, but not for its total: it pays nothing (whatever state the order
        is in), no stock moves, nothing is refunded by itself, and staff are told."""
        number = data.draw(st.sampled_from(sorted(self.secure_refs)), label="order")
        total = self.shop.run(self.shop.commerce.orders.order_for(number, staff=True)).totals.total
        amount = Money(total.amount + 1, total.currency) if wrong == "amount" \
            else Money(total.amount, "USD" if total.currency != "USD" else "EUR")
        gateway = build_gateways(self.shop.settings)["test"]
        assert isinstance(gateway, TestGateway)
        body = gateway.event_body(event_id=f"evt_{uuid.uuid4().hex}", kind=EventKind.PAYMENT_SUCCEEDED,
                                  payment_ref=self.secure_refs[number], reference=number, amount=amount)
        outcome = self.shop.run(self.shop.commerce.payments.apply_webhook(
            "test", body, gateway.signed_headers(body, now=utcnow())))
        assert outcome.applied and outcome.order == number
        alert = self.shop.run(self.shop.commerce.orders.order_for(number, staff=True)).payment.alert
        assert alert is not None and str(amount) in alert
        if self.payment[number] not in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
            self.payment[number] = PaymentStatus.MISMATCHED

    # --- time and the worker ---------------------------------------------------------------------------------

    @precondition(lambda self: OrderStatus.PENDING in self.status.values())
    @rule()
    def reservations_run_out(self) -> None:
        """An hour later the worker settles what was never paid: the 3-D Secure orders nobody authenticated."""
        pending = [number for number, status in self.status.items() if status is OrderStatus.PENDING]
        settled = self.shop.run(self.shop.commerce.payments.expire_reservations(now=utcnow() + timedelta(hours=1)))
        assert settled == len(pending)
        for number in pending:  # its stock and its voucher go back
            self.status[number], self.payment[number] = OrderStatus.CANCELED, PaymentStatus.CANCELED
            self.holding_voucher.discard(number)

    @precondition(lambda self: bool(self.status))
    @rule()
    def worker_round(self) -> None:
        self.shop.run(self.shop.jobs.run_once())
        for number, status in self.status.items():
            if status is OrderStatus.CANCELED and self.payment[number] is PaymentStatus.CAPTURED:
                self.payment[number] = PaymentStatus.REFUNDED
        # the catalogue's in-stock flags have caught up with every change of stock (the worker changes none)
        flags = self.shop.run(in_stock_flags(self.shop.databases.store("posts")))
        assert flags == {sku: units > 0 for sku, units in self.available().items()}

    # --- staff -----------------------------------------------------------------------------------------------

    @rule(number=order_numbers, action=st.sampled_from(sorted(STAFF)))
    def staff_moves_an_order(self, number: str, action: str) -> None:
        """Staff act on any order, often one the state machine says they may not."""
        self.move(number, action)

    @precondition(lambda self: any(status in LIVE for status in self.status.values()))
    @rule(data=st.data(), choice=st.sampled_from(["next", "next", "refund", "cancel"]))
    def staff_act_on_a_paid_order(self, data: st.DataObject, choice: str) -> None:
        """Staff take a paid order one step further, or give the money back: so orders get as far as shipped
        and delivered, and are refunded from every state."""
        live = sorted(number for number, status in self.status.items() if status in LIVE)
        number = data.draw(st.sampled_from(live), label="order")
        self.move(number, NEXT.get(self.status[number], "refund") if choice == "next" else choice)

    def move(self, number: str, action: str) -> None:
        current, wanted = self.status[number], STAFF[action]
        moved, error = self.attempt(getattr(self.shop.commerce.orders, action)(number))
        if not legal(current, wanted):
            assert isinstance(error, IllegalTransition), error
            assert (error.number, error.current, error.wanted) == (number, current, wanted)
            return
        assert error is None, error
        assert moved is not None and moved.status is wanted
        self.status[number] = wanted
        if wanted is OrderStatus.REFUNDED or (wanted is OrderStatus.CANCELED and current is OrderStatus.PAID):
            self.payment[number] = PaymentStatus.REFUNDED
        elif wanted is OrderStatus.CANCELED:  # unpaid: the stock and the voucher go back
            self.payment[number] = PaymentStatus.CANCELED
            self.holding_voucher.discard(number)

    # --- invariants ------------------------------------------------------------------------------------------

    @invariant()
    def the_store_agrees_with_itself_and_with_the_model(self) -> None:
        stored = self.shop.run(read_store(self.shop.main))
        self.levels = stored.levels
        assert stored.status == self.status
        assert stored.payment == self.payment
        assert stored.cart_status == self.cart_status

        pending, sold = Counter[str](), Counter[str]()
        for number, status in stored.status.items():
            if status is OrderStatus.PENDING:
                pending.update(stored.units[number])
            # paid and not given back: still sold, or refunded once it had left with the carrier
            if status in LIVE or (status is OrderStatus.REFUNDED and OrderStatus.SHIPPED in stored.history[number]):
                sold.update(stored.units[number])
        assert set(stored.levels) == set(STOCK)
        for sku, (on_hand, reserved) in stored.levels.items():
            assert 0 <= reserved <= on_hand, (sku, on_hand, reserved)
            assert reserved == pending[sku], (sku, reserved, dict(pending))
            assert on_hand + sold[sku] == STOCK[sku], (sku, on_hand, dict(sold))
        # the in-stock flags follow every step at once, worker or not: refreshed right after each commit
        flags = self.shop.run(in_stock_flags(self.shop.databases.store("posts")))
        assert flags == {sku: on_hand > reserved for sku, (on_hand, reserved) in stored.levels.items()}

        captured = {number for number, payment in stored.payment.items() if payment is PaymentStatus.CAPTURED}
        paid = {number for number, status in stored.status.items() if status in LIVE}
        # money captured for a canceled order is on its way back: a refund job waits for the worker
        stray = {number for number in captured if stored.status[number] is OrderStatus.CANCELED}
        assert paid == captured - stray
        assert stray == stored.refund_jobs
        refunded = {number for number, status in stored.status.items() if status is OrderStatus.REFUNDED}
        assert all(stored.payment[number] is PaymentStatus.REFUNDED for number in refunded)

        assert stored.redeemed_by == self.holding_voucher
        assert stored.voucher_used == len(stored.redeemed_by) <= VOUCHER_LIMIT
        assert stored.redeemed_by <= {number for number, code in stored.discount.items() if code == VOUCHER}


def test_stock_and_money_always_agree_with_the_orders(backend: str, db_factory: DatabaseFactory) -> None:
    loop = asyncio.new_event_loop()
    try:
        shop = loop.run_until_complete(open_shop(loop, backend, db_factory))
        try:
            machine = type("BoundCommerceMachine", (CommerceMachine,), {"shop": shop})
            run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
        finally:
            loop.run_until_complete(shop.databases.dispose())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()



async def test_a_refund_made_at_the_gateway_puts_unshipped_goods_back_on_the_shelf(
        backend: str, db_factory: DatabaseFactory) -> None:
    shop = await open_shop(asyncio.get_running_loop(), backend, db_factory)
    try:
        await shop.reset()
        view, _ = await shop.commerce.carts.create(customer_id=None)
        await shop.commerce.carts.add_item(view.cart.id, sku="SM-MUG", quantity=2, customer_id=None)
        order = (await shop.commerce.checkout.place_order(CheckoutRequest(
            cart_id=view.cart.id, email="shopper@example.com", address=ADDRESS, shipping_method="standard",
            payment_token="tok_visa"))).order
        assert order.status is OrderStatus.PAID and order.payment.reference is not None
        gateway = build_gateways(shop.settings)["test"]
        assert isinstance(gateway, TestGateway)
        # refunded in the gateway's dashboard, or the event of a staff refund arriving before its transaction
        body = gateway.event_body(event_id="evt_refund_1", kind=EventKind.REFUNDED,
                                  payment_ref=order.payment.reference, reference=order.number,
                                  amount=order.totals.total)
        outcome = await shop.commerce.payments.apply_webhook("test", body,
                                                           gateway.signed_headers(body, now=utcnow()))
        assert outcome.applied
        stored = await read_store(shop.main)
        assert stored.status[order.number] is OrderStatus.REFUNDED
        assert stored.levels["SM-MUG"] == (STOCK["SM-MUG"], 0)  # paid, never shipped: back on the shelf
    finally:
        await shop.databases.dispose()


async def test_a_charge_that_succeeds_after_the_order_was_canceled_does_not_pay_it(
        backend: str, db_factory: DatabaseFactory) -> None:
    """The checkout pays the order it just placed by a conditional update, without reading it back: if anything
    moved the order on between placing and the gateway's answer (here staff cancel it mid-charge), the update
    matches nothing and the order is read under lock instead — no stock is taken, no confirmation goes out."""
    shop = await open_shop(asyncio.get_running_loop(), backend, db_factory)
    try:
        await shop.reset()
        checkout = shop.commerce.checkout
        real = checkout._gateway

        class CanceledMidCharge:
            name = real.name

            async def charge(self, request: ChargeRequest) -> ChargeResult:
                await shop.commerce.orders.cancel(request.reference)
                return await real.charge(request)

        # another order holds 2 mugs (its payment awaits 3-D Secure), so taking ours would not fail on its own:
        # only the conditional update can tell that ours is no longer pending
        other, _ = await shop.commerce.carts.create(customer_id=None)
        await shop.commerce.carts.add_item(other.cart.id, sku="SM-MUG", quantity=2, customer_id=None)
        held = (await checkout.place_order(CheckoutRequest(
            cart_id=other.cart.id, email="other@example.com", address=ADDRESS, shipping_method="standard",
            payment_token="tok_threeDSecure"))).order
        assert held.status is OrderStatus.PENDING
        checkout._gateway = CanceledMidCharge()  # type: ignore[assignment]
        view, _ = await shop.commerce.carts.create(customer_id=None)
        await shop.commerce.carts.add_item(view.cart.id, sku="SM-MUG", quantity=1, customer_id=None)
        with pytest.raises(PaymentDeclined) as refused:
            await checkout.place_order(CheckoutRequest(
                cart_id=view.cart.id, email="shopper@example.com", address=ADDRESS, shipping_method="standard",
                payment_token="tok_visa"))
        number = refused.value.number
        stored = await read_store(shop.main)
        assert stored.status[number] is OrderStatus.CANCELED
        assert stored.history[number] == [OrderStatus.PENDING, OrderStatus.CANCELED]
        assert stored.levels["SM-MUG"] == (STOCK["SM-MUG"], 2)  # ours released by the cancel, never taken
        async with shop.main.read() as conn:
            mails = (await conn.execute(select(outbox.c.payload).where(outbox.c.kind == "email"))).scalars().all()
        assert not [m for m in mails if number in str(m)]
        # the card was charged for it all the same: the money is recorded and goes back through the worker
        assert stored.payment[number] is PaymentStatus.CAPTURED and number in stored.refund_jobs
        await shop.jobs.run_once()
        after = await read_store(shop.main)
        assert after.payment[number] is PaymentStatus.REFUNDED and after.status[number] is OrderStatus.CANCELED
        assert after.levels["SM-MUG"] == (STOCK["SM-MUG"], 2)
    finally:
        await shop.databases.dispose()
