"""OneTimePasswords with pyotp: 6 digits, 30-second steps, one step of clock drift allowed either way; the step a
code belongs to is returned so that a code can be refused when it is used a second time."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp


class PyOtpPasswords:
    def new_secret(self) -> str:
        return pyotp.random_base32()

    def provisioning_uri(self, secret: str, *, account: str, issuer: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)

    def verify(self, secret: str, code: str, *, now: datetime) -> int | None:
        code = code.strip().replace(" ", "")
        if not (len(code) == 6 and code.isdigit()):
            return None
        totp = pyotp.TOTP(secret)
        step = totp.timecode(now)
        for candidate in (step, step - 1, step + 1):
            if hmac.compare_digest(totp.generate_otp(candidate), code):
                return candidate
        return None
