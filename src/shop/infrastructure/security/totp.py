"""OneTimePasswords with pyotp: 6 digits, 30-second steps, one step of clock drift allowed either way."""

from __future__ import annotations

from datetime import datetime

import pyotp


class PyOtpPasswords:
    def new_secret(self) -> str:
        return pyotp.random_base32()

    def provisioning_uri(self, secret: str, *, account: str, issuer: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)

    def verify(self, secret: str, code: str, *, now: datetime) -> bool:
        code = code.strip().replace(" ", "")
        if not (len(code) == 6 and code.isdigit()):
            return False
        return pyotp.TOTP(secret).verify(code, for_time=now, valid_window=1)
