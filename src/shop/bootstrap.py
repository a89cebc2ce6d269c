"""The composition root: builds engines, adapters and services from settings. Nothing connects here."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from shop.config import STORES, Settings
from shop.domain.money import Money
from shop.domain.pricing import ShippingKind, ShippingMethod, TaxTable
from shop.infrastructure.db import migrate as migrations
from shop.infrastructure.db.engines import Databases as Databases
from shop.infrastructure.db.engines import SqlStoreProbe
from shop.infrastructure.db.engines import StoreConfigError as StoreConfigError
from shop.infrastructure.db.engines import short_reason as short_reason
from shop.infrastructure.db.gauges import outbox_depth, pool_usage
from shop.infrastructure.db.main.carts import SqlCarts
from shop.infrastructure.db.main.dialects import dialect_for
from shop.infrastructure.db.main.idempotency import SqlIdempotency
from shop.infrastructure.db.main.order_search import SqlOrderSearch
from shop.infrastructure.db.main.orders import SqlOrders
from shop.infrastructure.db.main.outbox import SqlOutbox
from shop.infrastructure.db.main.request_log import SqlRequestLogStore
from shop.infrastructure.db.main.stock import SqlStock
from shop.infrastructure.db.main.unit_of_work import SqlMainUnitOfWork
from shop.infrastructure.db.main.usage import SqlRequestLog, SqlSales
from shop.infrastructure.db.main.vouchers import SqlVouchers
from shop.infrastructure.db.main.web_sessions import SqlWebSessions
from shop.infrastructure.db.posts import dialects as posts_dialects
from shop.infrastructure.db.posts.catalog import PostsCatalog
from shop.infrastructure.db.posts.catalog_staff import SqlCatalogStaff
from shop.infrastructure.db.types import utcnow
from shop.infrastructure.db.users.accounts import SqlRefreshTokens, SqlTwoFactorState, SqlUsers
from shop.infrastructure.db.users.phone_codes import SqlPhoneCodes
from shop.infrastructure.email.files import FileMailSender
from shop.infrastructure.email.message import Sender
from shop.infrastructure.email.queue import OutboxMailQueue
from shop.infrastructure.email.rendering import JinjaMailTemplates
from shop.infrastructure.email.smtp import SmtpConfig, SmtpSender
from shop.infrastructure.media_store import FileMediaStore
from shop.infrastructure.metrics import CommerceMetrics
from shop.infrastructure.mongo.users import MongoPhoneCodes, MongoRefreshTokens, MongoTwoFactorState, MongoUsers
from shop.infrastructure.payments.stripe import StripeConfig, StripeGateway
from shop.infrastructure.payments.test_gateway import TestGateway
from shop.infrastructure.process_files import FileProcessBoard
from shop.infrastructure.request_log_file import RequestLogFiles
from shop.infrastructure.security.passwords import Argon2Passwords
from shop.infrastructure.security.secret_box import FernetSecretBox, new_key
from shop.infrastructure.security.throttle import AttemptThrottle
from shop.infrastructure.security.tokens import JwtAccessTokens, JwtSignedTokens
from shop.infrastructure.security.totp import PyOtpPasswords
from shop.infrastructure.sms.files import FileSmsSender
from shop.infrastructure.sms.gateway import GatewayConfig, HttpSmsGateway
from shop.infrastructure.sms.numbers import LibPhoneNumbers
from shop.services.account_flows import AccountFlows
from shop.services.auth import AuthService
from shop.services.business import BusinessFigures
from shop.services.card_payments import CardForm, CardPayments
from shop.services.cart import CartService
from shop.services.catalog import CatalogService
from shop.services.catalog_admin import CatalogAdmin
from shop.services.catalog_staff import CatalogStaff
from shop.services.catalog_version import CatalogVersionWatcher
from shop.services.checkout import CheckoutService, Pricing
from shop.services.commerce_jobs import CommerceJobs
from shop.services.customers import Customers
from shop.services.email_delivery import MailSender, deliver_due
from shop.services.guesses import ACCOUNT_PREFIX, CLIENT_PREFIX
from shop.services.housekeeping import Housekeeping
from shop.services.idempotency import Idempotency
from shop.services.in_stock import InStockFlags
from shop.services.order_desk import OrderDesk
from shop.services.order_mail import OrderMail
from shop.services.order_payments import OrderPayments
from shop.services.orders import OrderService
from shop.services.payment_gateway import PaymentGateway
from shop.services.phone_verification import PhoneCodeStore, PhoneVerification, SmsSender
from shop.services.ports import (
    EndedSessions,
    RefreshTokenStore,
    StoreProbe,
    Throttle,
    TwoFactorSecrets,
    TwoFactorStore,
    UserRepository,
)
from shop.services.request_log import RequestLogRetention, RequestLogWriter
from shop.services.seeding import SeedReport, seed_catalog
from shop.services.session_watch import SessionWatcher
from shop.services.shop import ShopServices
from shop.services.stock_watch import StockWatcher
from shop.services.two_factor import Resealed, TwoFactor, reseal_secrets
from shop.services.uploads import ProductImages
from shop.services.usage import UsageService
from shop.services.vouchers import Vouchers
from shop.services.web_sessions import WebSessions
from shop.web.app import ASGIApp, create_app


def build_databases(settings: Settings) -> Databases:
    """Raises StoreConfigError naming the store whose URL is not one."""
    return Databases({store: settings.store_url(store) for store in STORES},
                     pool_size=settings.db_pool_size, connect_timeout=settings.db_connect_timeout)


# The `shop` command reaches the stores through this module only (Databases, StoreConfigError and short_reason
# are re-exported for it).
async def migrate_store(databases: Databases, store: str) -> tuple[str | None, str | None]:
    """`shop migrate`: one store's schema brought up to date; its revision before and after."""
    return await migrations.migrate(databases, store)


async def store_migrated(databases: Databases, store: str) -> bool:
    """The store's schema is at the newest revision."""
    return await migrations.current(databases, store) == migrations.head(store)


def build_seeder(settings: Settings, databases: Databases) -> Callable[..., Awaitable[SeedReport]]:
    """`shop seed`: `seed_catalog` into the catalogue, the stock levels into the main store."""
    catalog = build_catalog(settings, databases)
    return partial(seed_catalog, reader=catalog.reader, writer=catalog.writer,
                   stock=SqlStock(databases.store("main")))


def build_process_board(settings: Settings) -> FileProcessBoard:
    return FileProcessBoard(settings.run_dir)


def build_catalog(settings: Settings, databases: Databases) -> PostsCatalog:
    """The catalogue's adapters; build them once per process: their one reader keeps the list totals."""
    posts = databases.store("posts")
    # the database's search and serial ids, chosen once
    return PostsCatalog.on(posts, dialect=posts_dialects.dialect_for(posts.backend), currency=settings.currency)


@dataclass(frozen=True, slots=True)
class UsersStore:
    """The users store's adapters, all on one backend."""

    users: UserRepository
    refresh_tokens: RefreshTokenStore
    ended_sessions: EndedSessions
    two_factor: TwoFactorStore
    two_factor_secrets: TwoFactorSecrets
    phone_codes: PhoneCodeStore


def build_users_store(databases: Databases) -> UsersStore:
    """On MongoDB when the users store's URL is mongodb://…, on SQL otherwise."""
    if databases.is_mongo("users"):
        mongo = databases.mongo_store("users")
        mongo_tokens, mongo_factors = MongoRefreshTokens(mongo), MongoTwoFactorState(mongo)
        return UsersStore(users=MongoUsers(mongo), refresh_tokens=mongo_tokens, ended_sessions=mongo_tokens,
                          two_factor=mongo_factors, two_factor_secrets=mongo_factors,
                          phone_codes=MongoPhoneCodes(mongo))
    sql = databases.store("users")
    sql_tokens, sql_factors = SqlRefreshTokens(sql), SqlTwoFactorState(sql)
    return UsersStore(users=SqlUsers(sql), refresh_tokens=sql_tokens, ended_sessions=sql_tokens,
                      two_factor=sql_factors, two_factor_secrets=sql_factors, phone_codes=SqlPhoneCodes(sql))


def build_guesses(settings: Settings) -> AttemptThrottle:
    """Wrong codes and link tokens, per account and per client: one count shared by every check of a guessed
    secret (2FA, recovery and texted codes, e-mailed links)."""
    return AttemptThrottle({ACCOUNT_PREFIX: settings.code_limit_account, CLIENT_PREFIX: settings.code_limit_client},
                           redis_url=settings.redis_url)


def build_secret_box(settings: Settings) -> FernetSecretBox:
    """Seals 2FA secrets: with SHOP_TOTP_KEYS, the first of them; unset, a key derived from the secret key. The
    derived key always opens too, so secrets sealed before SHOP_TOTP_KEYS was set keep working until re-sealed."""
    derived = base64.urlsafe_b64encode(hmac.new(settings.signing_secret().encode(), b"totp-secrets",
                                                hashlib.sha256).digest())
    return FernetSecretBox([*settings.totp_key_list(), derived])


def new_totp_key() -> str:
    """A new random key for SHOP_TOTP_KEYS (`shop totp new-key`)."""
    return new_key()


def build_two_factor(settings: Settings, databases: Databases, *, guesses: Throttle | None = None,
                     users: UsersStore | None = None) -> TwoFactor:
    return TwoFactor(store=(users or build_users_store(databases)).two_factor, otp=PyOtpPasswords(),
                     box=build_secret_box(settings), issuer=settings.shop_name,
                     throttle=guesses or build_guesses(settings))


def build_totp_rekey(settings: Settings, databases: Databases, *,
                     progress: Callable[[int], None] | None = None) -> Callable[[], Awaitable[Resealed]]:
    """`shop totp rekey`: every stored 2FA secret sealed under the first key."""
    store, box = build_users_store(databases).two_factor_secrets, build_secret_box(settings)

    async def rekey() -> Resealed:
        return await reseal_secrets(store=store, box=box, progress=progress)

    return rekey


def build_session_watch(settings: Settings, databases: Databases, *,
                        users: UsersStore | None = None) -> SessionWatcher:
    """A web worker's copy of the sessions that ended, which its access-token checks read."""
    return SessionWatcher((users or build_users_store(databases)).ended_sessions,
                          token_lifetime=timedelta(seconds=settings.access_token_seconds),
                          interval=settings.session_poll_interval)


def build_auth(settings: Settings, databases: Databases, *, two_factor: TwoFactor | None = None,
               sessions: SessionWatcher | None = None, users: UsersStore | None = None) -> AuthService:
    """Without `sessions`, an access token's session is looked up in the store on every check."""
    users = users or build_users_store(databases)
    return AuthService(
        users=users.users, refresh_tokens=users.refresh_tokens, ended_sessions=users.ended_sessions,
        sessions=sessions, hasher=Argon2Passwords(),
        access=JwtAccessTokens(settings.signing_secret(), ttl_seconds=settings.access_token_seconds),
        throttle=AttemptThrottle({"account": settings.login_limit_account, "client": settings.login_limit_client},
                                 redis_url=settings.redis_url),
        refresh_ttl=timedelta(days=settings.refresh_token_days),
        second_factor=two_factor or build_two_factor(settings, databases, users=users))


def build_mail_sender(settings: Settings) -> MailSender:
    sender = Sender(settings.mail_from, settings.mail_from_name)
    if settings.mail_backend == "file":
        return FileMailSender(settings.var_dir / "mail", sender)
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpSender(SmtpConfig(host=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username,
                                 password=password, starttls=settings.smtp_starttls and not settings.smtp_tls,
                                 implicit_tls=settings.smtp_tls, timeout=settings.smtp_timeout), sender)


def build_account_flows(settings: Settings, databases: Databases, *, guesses: Throttle | None = None,
                        users: UsersStore | None = None, web_sessions: WebSessions | None = None) -> AccountFlows:
    users = users or build_users_store(databases)
    return AccountFlows(
        users=users.users, refresh_tokens=users.refresh_tokens, hasher=Argon2Passwords(),
        tokens=JwtSignedTokens(settings.signing_secret()),
        templates=JinjaMailTemplates(shop_name=settings.shop_name),
        mail=OutboxMailQueue(SqlOutbox(databases.store("main"))), public_url=settings.public_url,
        throttle=guesses or build_guesses(settings),
        end_web_sessions=(web_sessions or build_web_sessions(databases)).end_all)


def build_delivery(settings: Settings, databases: Databases) -> Callable[[], Awaitable[int]]:
    """One round of `shop worker`: e-mail delivery, then the commerce jobs; how many jobs it handled."""
    outbox, sender = SqlOutbox(databases.store("main")), build_mail_sender(settings)
    send_time = timedelta(seconds=settings.smtp_timeout)
    lease = max(timedelta(seconds=60), 4 * send_time)  # room for a few slow sends per claim
    catalog = build_catalog(settings, databases)
    commerce = build_commerce(settings, databases, catalog=catalog)
    jobs = CommerceJobs(payments=commerce.payments, outbox=outbox, flags=commerce.flags)
    housekeeping = Housekeeping(sessions=build_web_sessions(databases),
                                phone_codes=build_users_store(databases).phone_codes, outbox=outbox,
                                idempotency=commerce.idempotency,
                                request_log=RequestLogRetention(
                                    store=SqlRequestLogStore(databases.store("main")),
                                    file=build_request_log_file(settings),
                                    keep=timedelta(days=settings.request_log_retention_days)))

    async def deliver() -> int:
        report = await deliver_due(outbox=outbox, sender=sender, now=utcnow, lease=lease, send_time=send_time)
        return report.claimed + await jobs.run_once() + await housekeeping.run_once()

    return deliver


def build_customers(databases: Databases, *, users: UsersStore | None = None,
                    web_sessions: WebSessions | None = None) -> Customers:
    users = users or build_users_store(databases)
    return Customers(users=users.users, refresh_tokens=users.refresh_tokens,
                     end_web_sessions=(web_sessions or build_web_sessions(databases)).end_all)


def build_request_log_file(settings: Settings) -> RequestLogFiles:
    return RequestLogFiles(settings.var_dir / "log", markdown=settings.request_log_format == "md")


def build_request_log(settings: Settings, databases: Databases) -> RequestLogWriter | None:
    """The writer a web worker hands its request records to; None when the log is switched off."""
    if not settings.request_log:
        return None
    return RequestLogWriter(store=SqlRequestLogStore(databases.store("main")), file=build_request_log_file(settings),
                            capacity=settings.request_log_queue)


def build_web_sessions(databases: Databases) -> WebSessions:
    return WebSessions(SqlWebSessions(databases.store("main")))


def build_pricing(settings: Settings) -> Pricing:
    currency = settings.currency
    methods = [ShippingMethod(
        code=m.code, name=m.name, kind=ShippingKind(m.kind), price=Money(m.price, currency),
        bands=tuple((grams, Money(price, currency)) for grams, price in m.bands),
        free_above=Money(m.free_above, currency) if m.free_above is not None else None,
        countries=frozenset(c.upper() for c in m.countries)) for m in settings.shipping_methods]
    taxes = TaxTable(rates={k.upper(): v for k, v in settings.tax_rates.items()}, default=settings.default_tax_rate,
                     prices_include_tax=settings.prices_include_tax)
    return Pricing(methods=methods, taxes=taxes, currency=currency)


def build_gateways(settings: Settings) -> dict[str, PaymentGateway]:
    """The configured gateway only: a live shop must not accept the test gateway's webhooks."""
    if settings.payment_gateway == "stripe":
        if settings.stripe_secret_key is None or settings.stripe_webhook_secret is None:
            raise ValueError("payments: SHOP_STRIPE_SECRET_KEY and SHOP_STRIPE_WEBHOOK_SECRET are needed for Stripe")
        return {"stripe": StripeGateway(StripeConfig(
            secret_key=settings.stripe_secret_key.get_secret_value(),
            webhook_secret=settings.stripe_webhook_secret.get_secret_value(), base_url=settings.stripe_base_url,
            return_url=settings.stripe_return_url))}
    secret = settings.payment_webhook_secret.get_secret_value() if settings.payment_webhook_secret else \
        hmac.new(settings.signing_secret().encode(), b"test-gateway-webhooks", hashlib.sha256).hexdigest()
    return {"test": TestGateway(webhook_secret=secret, public_url=settings.public_url)}


class Commerce:
    """The commerce services over one set of databases."""

    def __init__(self, settings: Settings, databases: Databases, *, catalog: PostsCatalog | None = None) -> None:
        main = databases.store("main")
        posts = catalog or build_catalog(settings, databases)
        offers = posts.reader
        # the database's own statements, chosen once; the catalogue's offers read inside the unit's transaction
        # where the catalogue shares the main database (one connection per unit, never two of one pool)
        units = SqlMainUnitOfWork(main, dialect=dialect_for(main.backend), offers=offers,
                                  offers_on=offers.offers_within if offers.shares_pool_with(main) else None)
        carts, vouchers = SqlCarts(main), SqlVouchers(main)
        gateways = build_gateways(settings)
        self.flags = InStockFlags(projection=posts.in_stock, stock=SqlStock(main))
        self.carts = CartService(carts=carts, vouchers=vouchers, catalog=offers, stock=SqlStock(main),
                                 currency=settings.currency)
        events = CommerceMetrics() if settings.metrics else None
        mail = OrderMail(templates=JinjaMailTemplates(shop_name=settings.shop_name), public_url=settings.public_url)
        orders = SqlOrders(main)
        self.payments = OrderPayments(units=units, reader=orders, gateways=gateways, mail=mail, events=events,
                                      flags=self.flags)
        self.checkout = CheckoutService(
            units=units, gateway=next(iter(gateways.values())), pricing=build_pricing(settings),
            payments=self.payments, reservation=timedelta(minutes=settings.reservation_minutes), events=events,
            flags=self.flags)
        self.orders = OrderService(reader=orders, units=units, payments=self.payments, mail=mail)
        form = CardForm(gateway=settings.payment_gateway, publishable_key=settings.stripe_publishable_key)
        self.card_payments = CardPayments(form=form, gateway=next(iter(gateways.values())), orders=self.orders,
                                          payments=self.payments)
        self.vouchers = Vouchers(repository=vouchers, currency=settings.currency)
        self.idempotency = Idempotency(SqlIdempotency(main))


def build_commerce(settings: Settings, databases: Databases, *, catalog: PostsCatalog | None = None) -> Commerce:
    return Commerce(settings, databases, catalog=catalog)


def build_sms_sender(settings: Settings) -> SmsSender:
    if settings.sms_backend == "file":
        return FileSmsSender(settings.var_dir / "sms", sender=settings.sms_from or settings.shop_name)
    token = settings.sms_token.get_secret_value() if settings.sms_token else ""
    # GatewayConfig raises ValueError naming what is missing (account/token/from) or an http:// non-local URL
    return HttpSmsGateway(GatewayConfig(account=settings.sms_account or "", token=token,
                                        sender=settings.sms_from or "", base_url=settings.sms_base_url,
                                        timeout=settings.sms_timeout))


def build_phone_verification(settings: Settings, databases: Databases, *, guesses: Throttle | None = None,
                             users: UsersStore | None = None) -> PhoneVerification:
    users = users or build_users_store(databases)
    return PhoneVerification(
        codes=users.phone_codes, users=users.users,
        numbers=LibPhoneNumbers(default_region=settings.sms_default_region, regions=settings.sms_regions or None),
        sms=build_sms_sender(settings),
        throttle=AttemptThrottle({"sms-number": settings.sms_limit_number, "sms-user": settings.sms_limit_user},
                                 redis_url=settings.redis_url),
        guesses=guesses or build_guesses(settings), key=settings.signing_secret(), shop_name=settings.shop_name)


def build_services(settings: Settings, databases: Databases | None = None) -> ShopServices:
    databases = databases or build_databases(settings)
    catalog_store = build_catalog(settings, databases)
    stock = SqlStock(databases.store("main"))
    catalog = CatalogService(reader=catalog_store.reader, stock=stock)
    admin = CatalogAdmin(products=catalog_store.products, stock=stock, catalog=catalog, currency=settings.currency)
    watcher = CatalogVersionWatcher(catalog_store.reader, interval=settings.catalog_poll_interval)
    watcher.subscribe(catalog_store.reader.catalog_changed)
    watcher.subscribe(catalog.catalog_changed)
    stock_watch = StockWatcher(stock, interval=settings.stock_poll_interval)
    probes: list[StoreProbe] = [databases.mongo_store(store) if databases.is_mongo(store)
                                else SqlStoreProbe(databases, store) for store in STORES]
    guesses = build_guesses(settings)  # one count of wrong codes per account and client, whichever page took them
    users, web_sessions = build_users_store(databases), build_web_sessions(databases)  # once: every service shares them
    two_factor = build_two_factor(settings, databases, guesses=guesses, users=users)
    session_watch = build_session_watch(settings, databases, users=users)
    commerce = build_commerce(settings, databases, catalog=catalog_store)
    return ShopServices(catalog=catalog, catalog_admin=admin,
                        auth=build_auth(settings, databases, two_factor=two_factor, sessions=session_watch,
                                        users=users),
                        accounts=build_account_flows(settings, databases, guesses=guesses, users=users,
                                                     web_sessions=web_sessions),
                        two_factor=two_factor,
                        phone=build_phone_verification(settings, databases, guesses=guesses, users=users),
                        carts=commerce.carts,
                        checkout=commerce.checkout, orders=commerce.orders, order_payments=commerce.payments,
                        vouchers=commerce.vouchers,
                        idempotency=commerce.idempotency,
                        catalog_staff=CatalogStaff(store=SqlCatalogStaff(databases.store("posts")), catalog=catalog),
                        customers=build_customers(databases, users=users, web_sessions=web_sessions),
                        order_desk=OrderDesk(SqlOrderSearch(databases.store("main"))),
                        product_images=ProductImages(store=FileMediaStore(settings.var_dir / "media" / "uploads"),
                                                     admin=admin),
                        web_sessions=web_sessions,
                        catalog_version=watcher, stock_watch=stock_watch, session_watch=session_watch,
                        processes=build_process_board(settings), stores=probes,
                        usage=UsageService(log=SqlRequestLog(databases.store("main"))),
                        business=BusinessFigures(sales=SqlSales(databases.store("main")), catalog=catalog,
                                                 currency=settings.currency,
                                                 low_stock_threshold=settings.low_stock_threshold),
                        request_log=build_request_log(settings, databases), db_pools=pool_usage(databases),
                        outbox_depth=outbox_depth(databases.store("main")),
                        card_payments=commerce.card_payments,
                        close=databases.dispose)


def create_asgi_app(settings: Settings | None = None) -> ASGIApp:
    """The app gunicorn's workers serve (`shop.bootstrap:create_asgi_app()`)."""
    settings = settings or Settings()
    return create_app(build_services(settings), settings)
