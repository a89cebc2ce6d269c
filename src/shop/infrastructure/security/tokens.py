"""Access tokens: short-lived JWTs signed with HS256; nothing else is ever accepted."""

from __future__ import annotations

import uuid
from datetime import datetime

import jwt

from shop.domain.users import InvalidToken, User

_ALGORITHM = "HS256"
_ISSUER = "shop"


class JwtAccessTokens:
    def __init__(self, secret: str, *, ttl_seconds: int = 900) -> None:
        if len(secret.encode()) < 32:
            raise ValueError("the signing secret needs at least 32 bytes")
        self._secret = secret
        self.ttl_seconds = ttl_seconds

    def issue(self, user: User, *, now: datetime) -> str:
        claims = {"sub": user.id, "iss": _ISSUER, "typ": "access", "iat": int(now.timestamp()),
                  "exp": int(now.timestamp()) + self.ttl_seconds, "jti": uuid.uuid4().hex,
                  "roles": sorted(r.value for r in user.roles)}
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def read(self, token: str, *, now: datetime) -> str:
        try:
            claims = jwt.decode(token, self._secret, algorithms=[_ALGORITHM], issuer=_ISSUER,
                                options={"require": ["sub", "exp", "iat", "iss", "typ"], "verify_exp": False,
                                         "verify_iat": False})
        except jwt.PyJWTError:
            raise InvalidToken() from None
        if claims.get("typ") != "access" or not isinstance(claims["sub"], str):
            raise InvalidToken()
        # times are judged by the service's clock, not the OS's, so workers with skewed clocks agree
        if int(claims["exp"]) <= int(now.timestamp()):
            raise InvalidToken("the access token has expired; refresh it")
        return claims["sub"]
