"""Sign-in sessions of the API: refresh tokens that rotate on every use, in families that begin at a login."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class RefreshToken:
    token_hash: str
    user_id: str
    family_id: str
    created_at: datetime
    expires_at: datetime


class Outcome(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REUSED = "reused"  # used or revoked before: someone may hold a stolen copy


@dataclass(frozen=True, slots=True)
class Consumed:
    outcome: Outcome
    token: RefreshToken | None = None


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a valid access token says: whose it is, and the session (refresh-token family) it was issued in."""

    user_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class TwoFactorState:
    """A TOTP secret, enabled once its first code was confirmed, and hashes of unused recovery codes."""

    secret: str
    enabled_at: datetime | None = None
    recovery_hashes: tuple[str, ...] = ()
    last_step: int | None = None  # the time step of the last code used: no code works twice
