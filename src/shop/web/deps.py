"""Services as typed route parameters (`orders: OrdersDep`), so a route names what it uses, not app.state."""

# Each lookup is its own `async def`: FastAPI runs a plain `def` dependency in its thread pool on every request,
# and a named function per service makes a misspelt one a mypy error. ShopServices' watchers and metrics
# hooks serve the lifespan and middleware, not routes, so they have no alias (the store probes serve /readyz).

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Request

from shop.services.account_flows import AccountFlows
from shop.services.auth import AuthService
from shop.services.business import BusinessFigures
from shop.services.card_payments import CardPayments
from shop.services.cart import CartService
from shop.services.catalog import CatalogService
from shop.services.catalog_admin import CatalogAdmin
from shop.services.catalog_staff import CatalogStaff
from shop.services.checkout import CheckoutService
from shop.services.customers import Customers
from shop.services.idempotency import Idempotency
from shop.services.order_desk import OrderDesk
from shop.services.order_payments import OrderPayments
from shop.services.orders import OrderService
from shop.services.phone_verification import PhoneVerification
from shop.services.ports import StoreProbe
from shop.services.process_status import ProcessBoard
from shop.services.shop import ShopServices
from shop.services.two_factor import TwoFactor
from shop.services.uploads import ProductImages
from shop.services.usage import UsageService
from shop.services.vouchers import Vouchers
from shop.services.web_sessions import WebSessions


def services_of(request: Request) -> ShopServices:
    """What bootstrap built for this app (web.app.create_app puts it on app.state)."""
    services: ShopServices = request.app.state.services
    return services


async def catalog(request: Request) -> CatalogService:
    return services_of(request).catalog


async def catalog_admin(request: Request) -> CatalogAdmin:
    return services_of(request).catalog_admin


async def auth(request: Request) -> AuthService:
    return services_of(request).auth


async def accounts(request: Request) -> AccountFlows:
    return services_of(request).accounts


async def two_factor(request: Request) -> TwoFactor:
    return services_of(request).two_factor


async def phone(request: Request) -> PhoneVerification:
    return services_of(request).phone


async def carts(request: Request) -> CartService:
    return services_of(request).carts


async def checkout(request: Request) -> CheckoutService:
    return services_of(request).checkout


async def orders(request: Request) -> OrderService:
    return services_of(request).orders


async def order_payments(request: Request) -> OrderPayments:
    return services_of(request).order_payments


async def card_payments(request: Request) -> CardPayments:
    return services_of(request).card_payments


async def vouchers(request: Request) -> Vouchers:
    return services_of(request).vouchers


async def catalog_staff(request: Request) -> CatalogStaff:
    return services_of(request).catalog_staff


async def customers(request: Request) -> Customers:
    return services_of(request).customers


async def order_desk(request: Request) -> OrderDesk:
    return services_of(request).order_desk


async def product_images(request: Request) -> ProductImages:
    return services_of(request).product_images


async def idempotency(request: Request) -> Idempotency:
    return services_of(request).idempotency


async def web_sessions(request: Request) -> WebSessions:
    return services_of(request).web_sessions


async def usage(request: Request) -> UsageService:
    return services_of(request).usage


async def business(request: Request) -> BusinessFigures:
    return services_of(request).business


async def processes(request: Request) -> ProcessBoard:
    return services_of(request).processes


async def stores(request: Request) -> Sequence[StoreProbe]:
    """Each store's probe, for the readiness check."""
    return services_of(request).stores


CatalogDep = Annotated[CatalogService, Depends(catalog)]
CatalogAdminDep = Annotated[CatalogAdmin, Depends(catalog_admin)]
AuthDep = Annotated[AuthService, Depends(auth)]
AccountsDep = Annotated[AccountFlows, Depends(accounts)]
TwoFactorDep = Annotated[TwoFactor, Depends(two_factor)]
PhoneDep = Annotated[PhoneVerification, Depends(phone)]
CartsDep = Annotated[CartService, Depends(carts)]
CheckoutDep = Annotated[CheckoutService, Depends(checkout)]
OrdersDep = Annotated[OrderService, Depends(orders)]
OrderPaymentsDep = Annotated[OrderPayments, Depends(order_payments)]
CardPaymentsDep = Annotated[CardPayments, Depends(card_payments)]
VouchersDep = Annotated[Vouchers, Depends(vouchers)]
CatalogStaffDep = Annotated[CatalogStaff, Depends(catalog_staff)]
CustomersDep = Annotated[Customers, Depends(customers)]
OrderDeskDep = Annotated[OrderDesk, Depends(order_desk)]
ProductImagesDep = Annotated[ProductImages, Depends(product_images)]
IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]
WebSessionsDep = Annotated[WebSessions, Depends(web_sessions)]
UsageDep = Annotated[UsageService, Depends(usage)]
BusinessDep = Annotated[BusinessFigures, Depends(business)]
ProcessesDep = Annotated[ProcessBoard, Depends(processes)]
StoresDep = Annotated[Sequence[StoreProbe], Depends(stores)]
