"""Cart use cases: guest and customer carts, lines by SKU, a discount code, merging a guest cart at sign-in.

A cart is priced afresh from the catalogue whenever it is shown; what a client says a line costs is never read.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from shop.domain.cart import Cart, CartStatus
from shop.domain.catalog import Offer
from shop.domain.discounts import VoucherNotApplicable, normalize_code
from shop.domain.errors import InvalidValue, NotFound, OutOfStock
from shop.domain.inventory import StockLevel
from shop.domain.money import Money
from shop.domain.pricing import PricedLine
from shop.services.clock import Clock, utc_now
from shop.services.commerce_ports import CartRepository, VoucherRepository
from shop.services.ports import CatalogReader, StockReader

T = TypeVar("T")


def new_cart_id() -> str:
    """Unguessable: 192 random bits. Whoever holds a guest cart's id holds the cart."""
    return secrets.token_urlsafe(24)


def new_line_id() -> str:
    return secrets.token_hex(6)


@dataclass(frozen=True, slots=True)
class CartView:
    """A cart priced now: its lines at current catalogue prices, and what cannot be bought any more."""

    cart: Cart
    lines: Sequence[PricedLine]
    unavailable: Sequence[str]  # ids of lines whose SKU is no longer sold
    stock: Mapping[str, int]  # units available now, per SKU
    goods: Money
    discount: Money
    discount_problem: str | None = None

    @property
    def subtotal(self) -> Money:
        return self.goods - self.discount


def priced_lines(cart: Cart, offers: Mapping[str, Offer]) -> tuple[list[PricedLine], list[str]]:
    """The cart's lines at catalogue prices, and the ids of lines whose SKU is gone or unpublished."""
    priced: list[PricedLine] = []
    gone: list[str] = []
    for line in cart.lines:
        offer = offers.get(line.sku)
        if offer is None or not offer.published:
            gone.append(line.id)
            continue
        priced.append(PricedLine(line_id=line.id, sku=line.sku, name=offer.name, product_slug=offer.product_slug,
                                 unit_price=offer.price, quantity=line.quantity, weight_grams=offer.weight_grams))
    return priced, gone


async def _complete(known: Mapping[str, T] | None, skus: Sequence[str],
                    read: Callable[[Sequence[str]], Awaitable[Mapping[str, T]]]) -> Mapping[str, T]:
    """What is known of `skus`, with the rest read (all of them when nothing is known)."""
    found = {sku: known[sku] for sku in skus if sku in known} if known else {}
    missing = [sku for sku in skus if sku not in found]
    if missing:
        found.update(await read(missing))
    return found


class CartService:
    def __init__(self, *, carts: CartRepository, vouchers: VoucherRepository, catalog: CatalogReader,
                 stock: StockReader, currency: str, clock: Clock = utc_now) -> None:
        self._carts = carts
        self._vouchers = vouchers
        self._catalog = catalog
        self._stock = stock
        self._currency = currency
        self._clock = clock

    async def _load(self, cart_id: str, customer_id: str | None) -> Cart:
        cart = await self._carts.get(cart_id) if 8 <= len(cart_id) <= 40 else None
        # a customer's cart is theirs alone; to anyone else it does not exist
        if cart is None or (cart.customer_id is not None and cart.customer_id != customer_id):
            raise NotFound("cart", cart_id)
        return cart

    async def view_of(self, cart: Cart, *, offers: Mapping[str, Offer] | None = None,
                      levels: Mapping[str, StockLevel] | None = None) -> CartView:
        """The cart priced now; `offers` and `levels` a caller has just read are not read again."""
        skus = list(dict.fromkeys(line.sku for line in cart.lines))
        offers = await _complete(offers, skus, self._catalog.offers)
        levels = await _complete(levels, skus, self._stock.levels)
        lines, gone = priced_lines(cart, offers)
        goods = sum((line.total for line in lines), Money.zero(self._currency))
        discount, problem = Money.zero(self._currency), None
        if cart.discount_code is not None:
            voucher = await self._vouchers.get(cart.discount_code)
            try:
                if voucher is None:
                    raise VoucherNotApplicable(cart.discount_code, "does not exist")
                voucher.check(goods, now=self._clock())
                discount = voucher.amount_off(goods)
            except VoucherNotApplicable as exc:
                problem = exc.reason
        return CartView(cart=cart, lines=lines, unavailable=gone,
                        stock={sku: level.available for sku, level in levels.items()},
                        goods=goods, discount=discount, discount_problem=problem)

    async def _save(self, cart: Cart, *also: Cart, offers: Mapping[str, Offer] | None = None,
                    levels: Mapping[str, StockLevel] | None = None) -> CartView:
        """Store the cart (and carts changed with it, in the same transaction); the first one, priced now."""
        now = self._clock()
        for changed in (cart, *also):
            changed.updated_at = now
        await self._carts.save(cart, *also)
        return await self.view_of(cart, offers=offers, levels=levels)

    async def create(self, *, customer_id: str | None) -> tuple[CartView, bool]:
        """A new cart; a customer who already has an open cart gets that one. True when a cart was made."""
        if customer_id is not None:
            existing = await self._carts.open_cart_of(customer_id)
            if existing is not None:
                return await self.view_of(existing), False
        now = self._clock()
        cart = Cart(id=new_cart_id(), customer_id=customer_id, created_at=now, updated_at=now)
        await self._carts.add(cart)
        return await self.view_of(cart), True

    async def view(self, cart_id: str, *, customer_id: str | None) -> CartView:
        """The cart priced now."""
        return await self.view_of(await self._load(cart_id, customer_id))

    async def add_item(self, cart_id: str, *, sku: str, quantity: int, customer_id: str | None) -> CartView:
        """Add units of a SKU that is for sale, no more than are in stock."""
        cart = await self._load(cart_id, customer_id)
        offers = await self._catalog.offers([sku])
        if sku not in offers or not offers[sku].published:
            raise InvalidValue("sku", f"no product for sale has the SKU {sku!r}")
        cart.add(sku, quantity, new_line_id=new_line_id())
        levels = await self._check_stock(cart, sku)
        return await self._save(cart, offers=offers, levels=levels)

    async def _check_stock(self, cart: Cart, sku: str) -> Mapping[str, StockLevel]:
        """The SKU's level, read now; OutOfStock if the cart wants more of it than that."""
        wanted = sum(line.quantity for line in cart.lines if line.sku == sku)
        levels = await self._stock.levels([sku])
        available = levels[sku].available if sku in levels else 0
        if wanted > available:
            raise OutOfStock(sku, requested=wanted, available=available)
        return levels

    async def change_item(self, cart_id: str, line_id: str, *, quantity: int, customer_id: str | None) -> CartView:
        cart = await self._load(cart_id, customer_id)
        line = cart.set_quantity(line_id, quantity)
        levels = await self._check_stock(cart, line.sku)
        return await self._save(cart, levels=levels)

    async def remove_item(self, cart_id: str, line_id: str, *, customer_id: str | None) -> CartView:
        cart = await self._load(cart_id, customer_id)
        cart.remove(line_id)
        return await self._save(cart)

    async def apply_discount(self, cart_id: str, code: str | None, *, customer_id: str | None) -> CartView:
        """Put a voucher code on the cart (None takes it off); a code that cannot apply now is refused."""
        cart = await self._load(cart_id, customer_id)
        if code is None:
            cart.set_discount(None)
            return await self._save(cart)
        normalized = normalize_code(code)
        voucher = await self._vouchers.get(normalized)
        if voucher is None:
            raise VoucherNotApplicable(normalized, "does not exist")
        goods = (await self.view_of(cart)).goods
        voucher.check(goods, now=self._clock())
        cart.set_discount(normalized)
        return await self._save(cart)

    async def merge(self, guest_cart_id: str, *, customer_id: str) -> CartView:
        """Fold a guest cart into the customer's open cart (made if need be), as happens at sign-in."""
        guest = await self._load(guest_cart_id, None)
        if guest.customer_id == customer_id:
            return await self.view_of(guest)
        if guest.customer_id is not None:
            raise NotFound("cart", guest_cart_id)
        mine = await self._carts.open_cart_of(customer_id)
        if mine is None:  # the guest cart simply becomes the customer's
            guest.customer_id = customer_id
            return await self._save(guest)
        if guest.status is not CartStatus.OPEN:
            return await self._save(mine)
        mine.absorb(guest, new_line_id=new_line_id)
        # together: the guest cart is marked merged only if its lines are in the customer's cart
        return await self._save(mine, guest)
