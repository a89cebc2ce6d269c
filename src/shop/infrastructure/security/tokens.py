"""Access tokens: short-lived JWTs signed with HS256; nothing else is ever accepted. Each names its session (`sid`,
the refresh-token family it was issued in), so that it dies when the session ends."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime

import jwt

from shop.domain.sessions import AccessClaims
from shop.domain.users import InvalidToken, User

_ALGORITHM = "HS256"
_ISSUER = "shop"


class JwtAccessTokens:
    def __init__(self, secret: str, *, ttl_seconds: int = 900) -> None:
        if len(secret.encode()) < 32:
            raise ValueError("the signing secret needs at least 32 bytes")
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def issue(self, user: User, *, session_id: str, now: datetime) -> str:
        claims = {"sub": user.id, "sid": session_id, "iss": _ISSUER, "typ": "access", "iat": int(now.timestamp()),
                  "exp": int(now.timestamp()) + self.ttl_seconds, "jti": uuid.uuid4().hex,
                  "roles": sorted(r.value for r in user.roles)}
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def read(self, token: str, *, now: datetime) -> AccessClaims:
        try:
            # a token without a session (made before sessions were named) cannot be ended early: refused
            claims = jwt.decode(token, self._secret, algorithms=[_ALGORITHM], issuer=_ISSUER,
                                options={"require": ["sub", "sid", "exp", "iat", "iss", "typ"], "verify_exp": False,
                                         "verify_iat": False})
        except jwt.PyJWTError:
            raise InvalidToken() from None
        if claims.get("typ") != "access" or not isinstance(claims["sub"], str) or not isinstance(claims["sid"], str):
            raise InvalidToken()
        # times are judged by the service's clock, not the OS's, so workers with skewed clocks agree
        if int(claims["exp"]) <= int(now.timestamp()):
            raise InvalidToken("the access token has expired; refresh it")
        return AccessClaims(user_id=claims["sub"], session_id=claims["sid"])


class JwtSignedTokens:
    """SignedTokens for e-mail links: JWTs whose `typ` is their purpose, so one kind never passes for another."""

    def __init__(self, secret: str) -> None:
        if len(secret.encode()) < 32:
            raise ValueError("the signing secret needs at least 32 bytes")
        # derived, so a link token can never be replayed as an access token even if `typ` checks were missed
        self._secret = hashlib.sha256(b"shop-links:" + secret.encode()).hexdigest()

    def sign(self, purpose: str, claims: Mapping[str, str], *, ttl_seconds: int, now: datetime) -> str:
        moment = int(now.timestamp())
        return jwt.encode({**claims, "typ": purpose, "iss": _ISSUER, "iat": moment, "exp": moment + ttl_seconds},
                          self._secret, algorithm=_ALGORITHM)

    def read(self, purpose: str, token: str, *, now: datetime) -> Mapping[str, str]:
        try:
            claims = jwt.decode(token, self._secret, algorithms=[_ALGORITHM], issuer=_ISSUER,
                                options={"require": ["exp", "iat", "typ"], "verify_exp": False, "verify_iat": False})
        except jwt.PyJWTError:
            raise InvalidToken() from None
        if claims.get("typ") != purpose:
            raise InvalidToken()
        if int(claims["exp"]) <= int(now.timestamp()):
            raise InvalidToken("this link has expired; ask for a new one")
        return {k: v for k, v in claims.items() if isinstance(v, str)}
