"""What the edges (web, CLI, workers) are handed by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from shop.services.account_flows import AccountFlows
from shop.services.auth import AuthService
from shop.services.cart import CartService
from shop.services.catalog import CatalogService
from shop.services.catalog_admin import CatalogAdmin
from shop.services.catalog_version import CatalogVersionWatcher
from shop.services.checkout import CheckoutService
from shop.services.idempotency import Idempotency
from shop.services.orders import OrderService
from shop.services.phone_verification import PhoneVerification
from shop.services.ports import StoreProbe
from shop.services.process_status import ProcessBoard
from shop.services.two_factor import TwoFactor
from shop.services.vouchers import Vouchers
from shop.services.web_sessions import WebSessions


@dataclass(frozen=True, slots=True)
class ShopServices:
    catalog: CatalogService
    catalog_admin: CatalogAdmin
    auth: AuthService
    accounts: AccountFlows
    two_factor: TwoFactor
    phone: PhoneVerification
    carts: CartService
    checkout: CheckoutService
    orders: OrderService
    vouchers: Vouchers
    idempotency: Idempotency
    web_sessions: WebSessions
    catalog_version: CatalogVersionWatcher
    processes: ProcessBoard
    stores: Sequence[StoreProbe]
    close: Callable[[], Awaitable[None]]
