"""Ports: what the use cases need from the world, as protocols the infrastructure implements."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from shop.domain.catalog import Category, Offer, Page, Product, ProductQuery, ProductSummary
from shop.domain.inventory import StockLevel
from shop.domain.messages import Email
from shop.domain.sessions import AccessClaims, Consumed, RefreshToken, TwoFactorState
from shop.domain.users import Role, User, UserStatus


class CatalogReader(Protocol):
    """Reads the catalogue (the posts store)."""

    async def categories(self) -> Sequence[Category]: ...

    async def products(self, query: ProductQuery, *, category_ids: Sequence[int] | None) -> Page[ProductSummary]:
        ...

    async def product(self, slug: str) -> Product | None: ...

    async def offers(self, skus: Sequence[str]) -> dict[str, Offer]:
        """The variants with these SKUs and what a cart needs of their product; unknown SKUs are left out."""
        ...

    async def version(self) -> int:
        """A number that changes whenever anything in the catalogue changes."""
        ...

    async def count_products(self) -> int: ...


class CatalogWriter(Protocol):
    async def add_categories(self, categories: Sequence[Category]) -> None: ...

    async def add_products(self, products: Sequence[Product], *, available: Mapping[str, int]) -> None:
        """Insert many products at once (ids chosen by the caller); `available` feeds the in-stock flag."""
        ...

    async def next_ids(self) -> tuple[int, int]:
        """The first free category id and product id."""
        ...


class StockReader(Protocol):
    """Reads stock levels (the main store)."""

    async def levels(self, skus: Sequence[str]) -> dict[str, StockLevel]: ...


class StockChanges(Protocol):
    """Which SKUs' stock moved lately (the main store stamps every change)."""

    async def changed_since(self, since: datetime) -> Sequence[tuple[str, Hashable]]:
        """Every SKU whose stock was stamped after `since`, with a signature of its row (level and stamp) that
        changes whenever the row does."""
        ...


class StockWriter(Protocol):
    async def set_levels(self, levels: Sequence[StockLevel]) -> None: ...


class Stock(StockReader, StockWriter, Protocol):
    """Stock levels, read and written."""


class StoreProbe(Protocol):
    """Answers whether one store can be reached."""

    name: str

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable otherwise."""
        ...


class StoreUnavailable(Exception):
    def __init__(self, store: str, host: str, reason: str) -> None:
        super().__init__(f"{store} store at {host} is unreachable: {reason}")
        self.store = store
        self.host = host
        self.reason = reason


class StoreBusy(Exception):
    """The database gave up on a transaction because of a concurrent one (a deadlock, a lock timeout): nothing
    was changed, and the same request may simply be tried again."""

    def __init__(self, store: str) -> None:
        super().__init__(f"the {store} store was busy with a conflicting change; try again")
        self.store = store


class UserRepository(Protocol):
    """People and their password hashes (the users store)."""

    async def add(self, user: User, *, password_hash: str) -> None:
        """Store a new user; raise EmailTaken if the e-mail key is already used."""
        ...

    async def by_email_key(self, email_key: str) -> tuple[User, str] | None:
        """The user with this e-mail key and their password hash."""
        ...

    async def by_id(self, user_id: str) -> User | None: ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    async def set_roles(self, user_id: str, roles: frozenset[Role]) -> None: ...

    async def mark_email_verified(self, user_id: str, *, at: datetime) -> None: ...

    async def set_phone(self, user_id: str, phone: str | None, *, verified_at: datetime | None) -> None: ...

    async def set_status(self, user_id: str, status: UserStatus) -> None: ...

    async def find(self, *, email: str = "", roles: frozenset[Role] = frozenset(), page: int = 1,
                   limit: int = 25) -> Page[User]:
        """Users whose e-mail key contains `email` and (when `roles` is given) who hold one of them, newest first."""
        ...


class RefreshTokenStore(Protocol):
    """Refresh tokens, kept only as hashes, grouped in families that begin at a login."""

    async def add(self, token: RefreshToken) -> None: ...

    async def consume(self, token_hash: str, *, now: datetime) -> Consumed:
        """Mark the token used, once: a second use of the same token comes back as `reused`."""
        ...

    async def revoke_family(self, family_id: str, *, now: datetime) -> None: ...

    async def revoke_user(self, user_id: str, *, now: datetime) -> None: ...


class EndedSessions(Protocol):
    """Sessions (refresh-token families) that ended: signed out, revoked for reuse, or with all of a user's."""

    async def ended_since(self, since: datetime) -> Sequence[tuple[str, datetime]]:
        """Every session that ended (by the stamp its revocation wrote) at or after `since`, with that stamp."""
        ...

    async def has_ended(self, session_id: str) -> bool: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class AccessTokens(Protocol):
    """Short-lived signed access tokens."""

    ttl_seconds: int

    def issue(self, user: User, *, session_id: str, now: datetime) -> str: ...

    def read(self, token: str, *, now: datetime) -> AccessClaims:
        """Whose a valid token is and its session; raise InvalidToken otherwise."""
        ...


class Throttle(Protocol):
    """Counts failed attempts per key (an account, an address) in a moving window."""

    async def check(self, keys: Sequence[str]) -> None:
        """Raise TooManyAttempts if any key has used up its attempts."""
        ...

    async def failed(self, keys: Sequence[str]) -> None: ...

    async def clear(self, keys: Sequence[str]) -> None: ...


class SignedTokens(Protocol):
    """Self-contained signed tokens for links in e-mails (verify an address, reset a password)."""

    def sign(self, purpose: str, claims: Mapping[str, str], *, ttl_seconds: int, now: datetime) -> str: ...

    def read(self, purpose: str, token: str, *, now: datetime) -> Mapping[str, str]:
        """The claims of a valid, unexpired token made for `purpose`; raise InvalidToken otherwise."""
        ...


class MailQueue(Protocol):
    """Queues one e-mail for `shop worker` to deliver, in a transaction of its own."""

    async def queue(self, email: Email) -> None: ...


class TwoFactorStore(Protocol):
    async def state(self, user_id: str) -> TwoFactorState | None: ...

    async def save(self, user_id: str, state: TwoFactorState | None) -> None: ...

    async def use_step(self, user_id: str, step: int) -> bool:
        """Record that the code of `step` was used; False if it or a later one already was (a replay)."""
        ...

    async def use_recovery(self, user_id: str, code_hash: str) -> bool:
        """Strike out one unused recovery code; False if it is not among them."""
        ...


class TwoFactorSecrets(Protocol):
    """Every stored 2FA secret as it is kept (sealed), for re-sealing them under a new key."""

    async def secrets_after(self, user_id: str, *, limit: int) -> Sequence[tuple[str, str]]:
        """Up to `limit` (user id, stored secret) pairs of users whose id sorts after `user_id`, in id order."""
        ...

    async def replace_secret(self, user_id: str, *, was: str, now: str) -> bool:
        """Store `now` if the stored secret is still `was`; False if it changed meanwhile (or was removed)."""
        ...


class SecretUnreadable(Exception):
    """A sealed secret that none of the configured keys opens: a key retired too early, or a damaged value."""


class SecretBox(Protocol):
    """Seals secrets kept at rest (2FA secrets) so that a copy of the database alone does not reveal them."""

    def seal(self, secret: str) -> str: ...

    def open(self, stored: str) -> str:
        """The secret; a value stored before sealing began comes back as it is; SecretUnreadable otherwise."""
        ...

    def reseal(self, stored: str) -> str:
        """The same secret sealed under the current key (plain values too); SecretUnreadable if it cannot be."""
        ...


class OneTimePasswords(Protocol):
    """Time-based one-time passwords (RFC 6238), as authenticator apps make them."""

    def new_secret(self) -> str: ...

    def provisioning_uri(self, secret: str, *, account: str, issuer: str) -> str: ...

    def verify(self, secret: str, code: str, *, now: datetime) -> int | None:
        """The time step the code belongs to, if it is valid now; None otherwise."""
        ...
