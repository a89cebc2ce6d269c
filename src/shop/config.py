"""Settings: environment variables with the SHOP_ prefix, or a .env file beside where shop runs."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

STORES = ("main", "users", "posts")

_DEFAULT_TAX_RATES = {"DE": "0.19", "AT": "0.20", "FR": "0.20", "NL": "0.21", "BE": "0.21", "IT": "0.22",
                      "ES": "0.21", "GB": "0.20", "US-CA": "0.0725", "US-NY": "0.04"}
_DEFAULT_SHIPPING = [
    {"code": "standard", "name": "Standard delivery (3-5 days)", "kind": "flat", "price": "4.90",
     "free_above": "50.00"},
    {"code": "express", "name": "Express (next day, by weight)", "kind": "weight", "price": "9.90",
     "bands": [[2000, "9.90"], [10000, "14.90"], [30000, "29.90"]]},
]


class ShippingMethodConfig(BaseModel):
    """One shipping method as configured (JSON in SHOP_SHIPPING_METHODS)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["flat", "weight"] = "flat"
    price: Decimal = Field(ge=0)
    bands: list[tuple[int, Decimal]] = Field(default_factory=list, description="[[up to grams, price], ...]")
    free_above: Decimal | None = Field(None, ge=0)
    countries: list[str] = Field(default_factory=list, description="ISO codes it ships to; empty: everywhere")


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***; anything unparsable is hidden whole past the scheme."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username}:***@{host}" if parts.username else f":***@{host}"
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return url.split("://", 1)[0] + "://***"


class Settings(BaseSettings):
    # hide_input_in_errors: a rejected value may be a key or a password; the message names the setting instead
    model_config = SettingsConfigDict(env_prefix="SHOP_", env_file=".env", extra="ignore", hide_input_in_errors=True)

    main_db_url: str = Field("sqlite+aiosqlite:///var/shop.db", description="carts, orders, stock, request log")
    users_db_url: str | None = Field(None, description="users and credentials; defaults to the main store")
    posts_db_url: str | None = Field(None, description="the catalogue; defaults to the main store")
    db_pool_size: int = Field(20, ge=1, le=200, description="connections kept per engine per worker")
    db_connect_timeout: float = Field(5.0, gt=0)

    var_dir: Path = Path("var")
    run_dir: Path = Field(Path("var/run"), description="control sockets, worker heartbeats, pool state")
    pool: str = Field("main", pattern=r"^[a-z][a-z0-9_-]{0,30}$", description="the route pool this server serves")
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    secret_key: SecretStr | None = Field(None, description="signs tokens; default: a random key kept in var/")
    access_token_seconds: int = Field(900, ge=60, le=86_400)
    refresh_token_days: int = Field(30, ge=1, le=365)
    login_limit_account: str = Field("10/15 minutes", description="failed logins allowed per account")
    login_limit_client: str = Field("30/minute", description="failed logins allowed per client address")
    code_limit_account: str = Field("10/15 minutes", description="wrong one-time codes allowed per account "
                                                                 "(2FA, recovery and texted codes)")
    code_limit_client: str = Field("30/15 minutes", description="wrong codes and e-mailed link tokens allowed per "
                                                                "client address")
    session_poll_interval: float = Field(0.25, gt=0, le=0.5, description="how often each web worker reads the "
                                                                         "sessions that ended (signed out, revoked)")
    redis_url: str | None = Field(None, description="shared rate-limit storage for every worker")
    require_staff_2fa: bool = Field(False, description="staff routes refuse staff without two-factor sign-in")
    low_stock_threshold: int = Field(5, ge=0, le=1_000_000, description="the business dashboard lists SKUs "
                                                                      "with this many units or fewer")

    shop_name: str = Field("shop", max_length=100)
    public_url: str = Field("http://127.0.0.1:8000", description="where people reach the shop; used in e-mail links")
    mail_backend: Literal["file", "smtp"] = Field("file", description="file: .eml files in var/mail (development)")
    mail_from: str = "shop@example.com"
    mail_from_name: str = "shop"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_tls: bool = Field(False, description="TLS from the first byte (port 465) instead of STARTTLS")
    smtp_timeout: float = Field(30.0, gt=0)

    sms_backend: Literal["file", "http"] = Field("file", description="file: text files in var/sms (development)")
    sms_base_url: str = Field("https://api.twilio.com/2010-04-01", description="Twilio-style REST API root")
    sms_account: str | None = None
    sms_token: SecretStr | None = None
    sms_from: str | None = Field(None, description="sending number (E.164) or sender id")
    sms_timeout: float = Field(10.0, gt=0)
    sms_default_region: str | None = Field(None, pattern=r"^[A-Za-z]{2}$", description="lets people omit +country")
    sms_regions: list[str] = Field(default_factory=list, description='countries texts may go to, e.g. ["DE"]')
    sms_limit_number: str = Field("3/hour", description="texts per phone number")
    sms_limit_user: str = Field("3/hour", description="texts per user")

    prices_include_tax: bool = Field(True, description="catalogue prices include tax (EU style) or not (US style)")
    tax_rates: dict[str, Decimal] = Field(
        default_factory=lambda: {k: Decimal(v) for k, v in _DEFAULT_TAX_RATES.items()},
        description='tax rate per country or country-region, e.g. {"DE": "0.19", "US-CA": "0.0725"}')
    default_tax_rate: Decimal = Field(Decimal(0), ge=0, lt=1, description="for countries not in tax_rates")
    shipping_methods: list[ShippingMethodConfig] = Field(
        default_factory=lambda: [ShippingMethodConfig(**m) for m in _DEFAULT_SHIPPING],  # type: ignore[arg-type]
        description="flat or weight-banded shipping prices, optionally free above an order value")
    reservation_minutes: int = Field(15, ge=1, le=24 * 60, description="how long checkout holds stock unpaid")
    payment_gateway: Literal["test", "stripe"] = Field("test", description="test: Stripe-like test card tokens")
    allow_test_payments: bool = Field(False, validate_default=True, description="let the test gateway run when "
                                      "public_url is https (anyone can pay with it; no money moves)")
    payment_webhook_secret: SecretStr | None = Field(None, description="signs test-gateway webhooks; default: "
                                                                       "derived from secret_key")
    # after public_url and secret_key, which its check reads (and after allow_test_payments, whose error goes first)
    totp_keys: SecretStr | None = Field(None, validate_default=True, description="Fernet keys, comma-separated: the "
                                        "first seals two-factor secrets, each opens them; default: derived from "
                                        "secret_key")
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    # after the gateway and the two secrets, which its check reads
    stripe_publishable_key: str | None = Field(None, validate_default=True, pattern=r"^pk_[A-Za-z0-9_]{1,250}$",
                                               description="Stripe's pk_… key, which the payment form loads "
                                                           "Stripe.js with (the secret key never leaves the server)")
    stripe_base_url: str = "https://api.stripe.com"
    stripe_return_url: str | None = Field(None, description="where Stripe sends a customer after 3-D Secure")

    assets_cdn: str | None = Field(None, description="gh:{user}/{repo}@{version}: static files from jsDelivr")
    cors_origins: list[str] = Field(default_factory=list, description='origins the API answers from browsers '
                                                                      'elsewhere, e.g. ["https://acme.github.io"]')

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int | None = Field(None, ge=1, le=256, description="default: one per CPU core")

    response_cache: bool = Field(True, description="serve anonymous catalogue reads from an in-process cache")
    response_cache_entries: int = Field(5000, ge=0)
    catalog_poll_interval: float = Field(0.25, gt=0, le=60)
    # with the catalogue poll, what keeps the response cache within its 1 s bound: see README "Caches"
    stock_poll_interval: float = Field(0.25, gt=0, le=60)

    request_log: bool = Field(True, description="record every request in the main store and var/log/")
    request_log_format: Literal["json", "md"] = Field("json", description="the file: JSON lines or a Markdown table")
    request_log_queue: int = Field(10_000, ge=1, le=1_000_000, description="records a worker holds while the "
                                                                           "database is away; beyond, dropped")
    request_log_retention_days: int = Field(30, ge=1, le=3650, description="rows and files older than this go")
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"], validate_default=True,
        description='peers whose X-Forwarded-For and X-Request-ID are believed, e.g. ["10.0.0.0/8"]')
    metrics: bool = Field(True, description="Prometheus figures at /metrics")

    log_level: str = "info"

    @field_validator("allow_test_payments")
    @classmethod
    def _no_test_payments_on_a_live_shop(cls, allowed: bool, info: ValidationInfo) -> bool:
        """An https public URL is a shop people buy from: there the test gateway would give its goods away."""
        public_url, gateway = info.data.get("public_url", ""), info.data.get("payment_gateway")
        if gateway == "test" and urlsplit(public_url).scheme.lower() == "https" and not allowed:
            raise PydanticCustomError(
                "test_payments_on_https", "the test payment gateway takes no money and lets anyone pay for an "
                "order, and SHOP_PUBLIC_URL is https: set SHOP_PAYMENT_GATEWAY=stripe (and the SHOP_STRIPE_* keys), "
                "or SHOP_ALLOW_TEST_PAYMENTS=true to run a try-out shop anyway")
        return allowed

    @field_validator("stripe_publishable_key")
    @classmethod
    def _stripe_has_its_keys(cls, key: str | None, info: ValidationInfo) -> str | None:
        """Stripe takes a card only with all three: the browser's key, the server's, and the webhooks' secret."""
        if info.data.get("payment_gateway") == "stripe":
            missing = [name for name, value in (("SHOP_STRIPE_PUBLISHABLE_KEY", key),
                                                ("SHOP_STRIPE_SECRET_KEY", info.data.get("stripe_secret_key")),
                                                ("SHOP_STRIPE_WEBHOOK_SECRET", info.data.get("stripe_webhook_secret")))
                       if not value]
            if missing:
                raise PydanticCustomError("stripe_keys", "SHOP_PAYMENT_GATEWAY=stripe needs {missing}",
                                          {"missing": " and ".join(missing)})
        return key

    @field_validator("totp_keys")
    @classmethod
    def _totp_keys_are_keys_and_kept_apart_on_a_live_shop(cls, keys: SecretStr | None,
                                                          info: ValidationInfo) -> SecretStr | None:
        """Each key must be a Fernet key; an https shop must not seal with the key made in var/, which sits beside
        the default SQLite database and goes wherever var/ is copied."""
        if keys is None or not keys.get_secret_value().strip():
            https = urlsplit(info.data.get("public_url", "")).scheme.lower() == "https"
            if https and info.data.get("secret_key") is None:
                raise PydanticCustomError(
                    "totp_keys_on_https", "SHOP_PUBLIC_URL is https and two-factor secrets would be sealed with the "
                    "key made in var/: set SHOP_TOTP_KEYS (`shop totp new-key` makes a key) or SHOP_SECRET_KEY")
            return None
        for number, key in enumerate((k.strip() for k in keys.get_secret_value().split(",") if k.strip()), start=1):
            try:
                whole = len(base64.urlsafe_b64decode(key.encode())) == 32
            except (binascii.Error, ValueError):
                whole = False
            if not whole:  # the key itself is never repeated in the message
                raise PydanticCustomError(
                    "totp_key_invalid", "key {number} is not a Fernet key (32 bytes in URL-safe base64; "
                    "`shop totp new-key` makes one)", {"number": number})
        return keys

    def totp_key_list(self) -> list[str]:
        """SHOP_TOTP_KEYS, the sealing key first; empty when unset."""
        raw = self.totp_keys.get_secret_value() if self.totp_keys is not None else ""
        return [key.strip() for key in raw.split(",") if key.strip()]

    def store_url(self, store: str) -> str:
        if store == "main":
            return self.main_db_url
        if store == "users":
            return self.users_db_url or self.main_db_url
        if store == "posts":
            return self.posts_db_url or self.main_db_url
        raise KeyError(store)

    def signing_secret(self) -> str:
        """The configured secret, or one made once and kept in var/ so every worker and restart shares it."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.var_dir / "secret_key"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    @cached_property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    def public_view(self) -> dict[str, Any]:
        """Every effective setting, secrets and passwords masked: what `shop config` prints."""
        view: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "***" if value.get_secret_value() else ""
            elif name == "secret_key":
                value = f"(random, kept in {self.var_dir / 'secret_key'})"
            elif name == "totp_keys":
                value = "(derived from secret_key)"
            elif name.endswith("_url") and value:
                value = mask_url(value)
            view[name] = value
        for store in STORES:
            view[f"{store}_db_url"] = mask_url(self.store_url(store))
        view["workers"] = self.worker_count
        return view
