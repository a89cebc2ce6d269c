"""People who use the shop: customers, staff and admins; the rules for their e-mail and password."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shop.domain.errors import DomainError, InvalidValue

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"[^@\s\x00-\x1f\x7f<>()\[\],;:\\\"]{{1,64}}@{_LABEL}(?:\.{_LABEL})+")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256

# The most common passwords of ten characters or more, from public breach corpora; refused outright.
_COMMON_PASSWORDS = frozenset((
    "1234567890", "0123456789", "1q2w3e4r5t", "1qaz2wsx3edc", "qwertyuiop", "asdfghjkl;", "password12",
    "password123", "password1234", "passw0rd123", "iloveyou12", "qwerty1234", "qwerty12345", "qwerty123456",
    "1234qwerty", "123456789a", "12345678910", "1111111111", "0000000000", "abcdefghij", "abcd123456",
    "football12", "baseball12", "starwars12", "welcome123", "letmein123", "sunshine12", "princess12", "dragon1234",
    "monkey1234", "trustno123", "superman12", "administrator", "admin12345", "changeme12", "qazwsxedc1",
    "zaq12wsx3e", "michael123", "computer12", "internet12", "whatever12", "shadow1234", "master1234", "987654321a",
    "9876543210",
))


class Role(StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"
    ADMIN = "admin"


class UserStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


def normalize_email(raw: str) -> tuple[str, str]:
    """The address as written (trimmed) and its key: one account per address, whatever its case."""
    email = raw.strip()
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise InvalidValue("email", "is not a valid e-mail address")
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}", email.casefold()


def check_password(password: str, *, email: str = "", name: str = "") -> None:
    """Refuse passwords that are short, common, or made of the person's own e-mail or name."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidValue("password", f"use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidValue("password", f"use at most {MAX_PASSWORD_LENGTH} characters")
    folded = password.casefold()
    if folded in _COMMON_PASSWORDS or len(set(folded)) < 4:
        raise InvalidValue("password", "is too common; choose one that is harder to guess")
    personal = {email.casefold(), email.casefold().partition("@")[0], name.casefold().replace(" ", "")} - {""}
    if folded in personal or folded.replace(" ", "") in personal:
        raise InvalidValue("password", "must not be your e-mail address or name")


@dataclass(slots=True)
class User:
    id: str
    email: str
    email_key: str
    name: str
    roles: frozenset[Role] = field(default_factory=lambda: frozenset({Role.CUSTOMER}))
    status: UserStatus = UserStatus.ACTIVE
    created_at: datetime | None = None
    email_verified_at: datetime | None = None
    phone: str | None = None
    phone_verified_at: datetime | None = None
    totp_enabled_at: datetime | None = None

    @property
    def has_two_factor(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def is_active(self) -> bool:
        return self.status is UserStatus.ACTIVE

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & {Role.STAFF, Role.ADMIN})

    def has_role(self, role: Role) -> bool:
        """Admins may do everything staff may; staff everything a customer may."""
        if role is Role.CUSTOMER:
            return True
        if role is Role.STAFF:
            return self.is_staff
        return Role.ADMIN in self.roles


class EmailTaken(DomainError):
    def __init__(self) -> None:
        super().__init__("an account with this e-mail address already exists")


class InvalidCredentials(DomainError):
    """Wrong e-mail or password: deliberately the same error for both."""

    def __init__(self) -> None:
        super().__init__("the e-mail address or password is wrong")


class SecondFactorRequired(DomainError):
    """The password was right; the account also needs a code from its authenticator app."""

    def __init__(self) -> None:
        super().__init__("enter the code from your authenticator app (or a recovery code) as `otp`")


class AccountDisabled(DomainError):
    def __init__(self) -> None:
        super().__init__("this account is disabled")


class InvalidToken(DomainError):
    """A token that is malformed, tampered with, expired, revoked or already used."""

    def __init__(self, reason: str = "the token is invalid or has expired") -> None:
        super().__init__(reason)


class TooManyAttempts(DomainError):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many attempts; try again later")
        self.retry_after = retry_after
