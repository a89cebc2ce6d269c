"""The real commerce services (carts, checkout, order payments, orders, vouchers, idempotency) wired as
`bootstrap.Commerce` wires them, over the in-memory main store and fakes, and the few verbs the tests share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from auth_fakes import FakeClock
from commerce_fakes import (
    FakeCarts,
    FakeIdempotencyStore,
    FakeOrderReader,
    FakeOutbox,
    FakeShelf,
    FakeStockReader,
    FakeVoucherBook,
)
from main_store_fakes import FakeMainStore, FakeMainUnitOfWork
from payment_fakes import FakeEvents, FakeGateway, FakeInStockProjection, FakeMailTemplates

from shop.domain.catalog import Product, Variant
from shop.domain.discounts import Voucher, VoucherKind
from shop.domain.money import Money
from shop.domain.orders import Order
from shop.domain.pricing import Address, ShippingKind, ShippingMethod, TaxTable
from shop.services.cart import CartService
from shop.services.checkout import CheckoutRequest, CheckoutService, PlacedOrder, Pricing
from shop.services.commerce_jobs import CommerceJobs
from shop.services.commerce_ports import CartRepository, IdempotencyStore, InStockProjection, OrderReader
from shop.services.idempotency import Idempotency, Ticket
from shop.services.in_stock import InStockFlags
from shop.services.order_mail import OrderMail
from shop.services.order_payments import OrderPayments
from shop.services.orders import OrderService
from shop.services.outbox import Outbox
from shop.services.payment_gateway import PaymentGateway, SimulatedGateway
from shop.services.ports import CatalogReader, StockReader
from shop.services.unit_of_work import MainUnitOfWork
from shop.services.vouchers import VoucherBook, Vouchers

EUR = "EUR"
ADDRESS = Address.of(name="Ada Lovelace", line1="Hauptstraße 1", city="Berlin", postal_code="10115", country="DE")
RESERVATION = timedelta(minutes=15)
# product id → SKUs; the mug is one product in two colours
PRODUCTS = {1: ("MUG-RED", "MUG-BLUE"), 2: ("CAP",), 3: ("TEE",)}
PRICES = {"MUG-RED": "12.00", "MUG-BLUE": "12.00", "CAP": "9.50", "TEE": "20.00"}
STOCK = {"MUG-RED": 3, "MUG-BLUE": 1, "CAP": 2, "TEE": 5}


def eur(amount: str) -> Money:
    return Money.of(amount, EUR)


def pricing() -> Pricing:
    methods = [ShippingMethod(code="standard", name="Standard", kind=ShippingKind.FLAT, price=eur("4.90"),
                              free_above=eur("100.00")),
               ShippingMethod(code="local", name="Local courier", kind=ShippingKind.FLAT, price=eur("9.00"),
                              countries=frozenset({"AT"}))]
    return Pricing(methods=methods, taxes=TaxTable(rates={"DE": Decimal("0.19")}), currency=EUR)


@dataclass
class CommerceShop:
    store: FakeMainStore
    shelf: FakeShelf
    units: FakeMainUnitOfWork
    gateway: FakeGateway
    events: FakeEvents
    templates: FakeMailTemplates
    projection: FakeInStockProjection
    stock: FakeStockReader
    idempotency_store: FakeIdempotencyStore
    clock: FakeClock
    carts: CartService
    checkout: CheckoutService
    payments: OrderPayments
    orders: OrderService
    vouchers: Vouchers
    idempotency: Idempotency
    outbox: FakeOutbox
    jobs: CommerceJobs

    @classmethod
    def build(cls, gateway_fake: FakeGateway | None = None) -> CommerceShop:
        store, shelf, clock = FakeMainStore(), FakeShelf(), FakeClock()
        for pid, skus in PRODUCTS.items():
            shelf.put(Product(id=pid, slug=f"product-{pid}", title=f"Product {pid}", description="", category_id=None,
                              variants=[Variant(sku=sku, price=eur(PRICES[sku]), title=sku.title(), weight_grams=300)
                                        for sku in skus]))
            for sku in skus:
                store.set_stock(sku, STOCK[sku])
        # typed as the ports the services take: mypy over this file catches a fake that drifts from its port
        units: MainUnitOfWork = FakeMainUnitOfWork(store, shelf)
        reader: OrderReader = FakeOrderReader(store)
        stock: StockReader = FakeStockReader(store)
        projection: InStockProjection = FakeInStockProjection(PRODUCTS)
        gateway: PaymentGateway = gateway_fake or FakeGateway()
        catalog: CatalogReader = shelf
        carts: CartRepository = FakeCarts(store)
        book: VoucherBook = FakeVoucherBook(store)
        keys: IdempotencyStore = FakeIdempotencyStore(store)
        outbox: Outbox = FakeOutbox(store)
        assert isinstance(gateway, SimulatedGateway)
        events, templates = FakeEvents(), FakeMailTemplates()
        flags = InStockFlags(projection=projection, stock=stock)
        mail = OrderMail(templates=templates, public_url="https://shop.example")
        payments = OrderPayments(units=units, reader=reader, gateways={gateway.name: gateway}, mail=mail,
                                 clock=clock, events=events, flags=flags)
        checkout = CheckoutService(units=units, gateway=gateway, pricing=pricing(), payments=payments,
                                   reservation=RESERVATION, clock=clock, events=events, flags=flags)
        assert isinstance(units, FakeMainUnitOfWork) and isinstance(projection, FakeInStockProjection)
        assert isinstance(gateway, FakeGateway) and isinstance(stock, FakeStockReader)
        assert isinstance(keys, FakeIdempotencyStore) and isinstance(outbox, FakeOutbox)
        return cls(
            store=store, shelf=shelf, units=units, gateway=gateway, events=events, templates=templates,
            projection=projection, stock=stock, idempotency_store=keys, clock=clock,
            carts=CartService(carts=carts, vouchers=book, catalog=catalog, stock=stock, currency=EUR, clock=clock),
            checkout=checkout, payments=payments,
            orders=OrderService(reader=reader, units=units, payments=payments, mail=mail, clock=clock),
            vouchers=Vouchers(repository=book, currency=EUR, clock=clock),
            idempotency=Idempotency(keys, clock=clock), outbox=outbox,
            jobs=CommerceJobs(payments=payments, outbox=outbox, flags=flags, clock=clock))

    # --- what a shopper does -------------------------------------------------------------------------------

    async def cart_with(self, *items: tuple[str, int], customer_id: str | None = None) -> str:
        """A new cart holding `items` (SKU, units); its id."""
        view, _ = await self.carts.create(customer_id=customer_id)
        for sku, quantity in items:
            await self.carts.add_item(view.cart.id, sku=sku, quantity=quantity, customer_id=customer_id)
        return view.cart.id

    def request(self, cart_id: str, *, token: str = "tok_visa", customer_id: str | None = None,
                discount_code: str | None = None, email: str = "shopper@example.com",
                idempotency: Ticket | None = None) -> CheckoutRequest:
        return CheckoutRequest(cart_id=cart_id, email=email, address=ADDRESS, shipping_method="standard",
                               payment_token=token, customer_id=customer_id, discount_code=discount_code,
                               idempotency=idempotency)

    async def buy(self, *items: tuple[str, int], token: str = "tok_visa", customer_id: str | None = None,
                  discount_code: str | None = None, email: str = "shopper@example.com") -> PlacedOrder:
        cart_id = await self.cart_with(*items, customer_id=customer_id)
        return await self.checkout.place_order(self.request(cart_id, token=token, customer_id=customer_id,
                                                            discount_code=discount_code, email=email))

    def voucher(self, code: str = "TENOFF", *, kind: VoucherKind = VoucherKind.PERCENTAGE, value: str = "10",
                usage_limit: int | None = None, per_customer_limit: int | None = None) -> Voucher:
        voucher = Voucher(code=code, kind=kind, value=Decimal(value), currency=EUR, usage_limit=usage_limit,
                          per_customer_limit=per_customer_limit)
        self.store.add_voucher(voucher)
        return voucher

    def order(self, number: str) -> Order:
        """The order as committed."""
        return self.store.order(number)

    def emails(self) -> list[str]:
        """Subjects of the committed e-mails, oldest first."""
        return [str(payload["subject"]) for payload in self.store.queued("email")]
