"""2FA secrets at rest on every users-store backend (each SQL database, and MongoDB): what the database holds is
sealed, codes still sign in, a key is rotated with `shop totp rekey`'s re-sealing, secrets stored in plain text
before keep working, and a secret no key opens fails closed."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import text

from shop.bootstrap import build_guesses, build_secret_box, build_totp_rekey, build_two_factor, build_users_store
from shop.config import Settings
from shop.domain.sessions import TwoFactorState
from shop.domain.users import User
from shop.infrastructure.db.engines import Databases
from shop.infrastructure.security.secret_box import PREFIX, new_key
from shop.infrastructure.security.totp import PyOtpPasswords
from shop.services.two_factor import TwoFactor
from tests.conftest import make_settings

A, B, C = new_key(), new_key(), new_key()
T0 = datetime(2026, 12, 7, 12, 0, 10, tzinfo=UTC)  # 10 s into a 30-second step
STEP = timedelta(seconds=30)


def _settings(**extra: Any) -> Settings:
    return make_settings("sqlite+aiosqlite:///unused.db", secret_key="at-rest-" + "k" * 40, **extra)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _two_factor(settings: Settings, databases: Databases, clock: Clock) -> TwoFactor:
    """The service as bootstrap wires it, on a clock the test moves (each code must belong to a later step)."""
    return TwoFactor(store=build_users_store(databases).two_factor, otp=PyOtpPasswords(),
                     box=build_secret_box(settings), issuer="shop", throttle=build_guesses(settings), clock=clock)


async def _user(databases: Databases) -> User:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    user = User(id=str(uuid.uuid4()), email=email, email_key=email, name="Ada", created_at=T0)
    await build_users_store(databases).users.add(user, password_hash="hash")
    return user


async def _raw(databases: Databases, user_id: str) -> str | None:
    """The stored secret read past the adapters: SQL, or the document through pymongo."""
    if databases.is_mongo("users"):
        async with databases.mongo_store("users").collection("users") as users:
            doc = await users.find_one({"_id": user_id}, projection={"totp_secret": 1})
        assert doc is not None
        return doc.get("totp_secret")
    async with databases.store("users").read() as conn:
        value = (await conn.execute(text("SELECT totp_secret FROM users WHERE id = :id"), {"id": user_id})).scalar()
    return str(value) if value is not None else None


def _opens_with(key: str, stored: str) -> str:
    assert stored.startswith(PREFIX), "sealed values are marked"
    return Fernet(key).decrypt(stored.removeprefix(PREFIX)).decode()


async def test_an_enrolled_secret_is_stored_sealed_and_its_codes_still_sign_in(users_databases: Databases) -> None:
    settings = _settings(totp_keys=A)
    two_factor = build_two_factor(settings, users_databases)
    ada = await _user(users_databases)
    secret = (await two_factor.begin(ada)).secret
    pending = await _raw(users_databases, ada.id)
    assert pending is not None and secret not in pending and _opens_with(A, pending) == secret
    await two_factor.confirm(ada, pyotp.TOTP(secret).now(), client="test")
    stored = await _raw(users_databases, ada.id)
    assert stored is not None and secret not in stored and _opens_with(A, stored) == secret
    assert await two_factor.check(ada, pyotp.TOTP(secret).at(time.time() + 30), client="test")
    assert not await two_factor.check(ada, "000000", client="test")


async def test_a_key_is_rotated_old_secrets_verify_and_rekey_leaves_them_under_the_new_key_alone(
        users_databases: Databases) -> None:
    clock, ada = Clock(), await _user(users_databases)
    under_a = _two_factor(_settings(totp_keys=A), users_databases, clock)
    secret = (await under_a.begin(ada)).secret
    await under_a.confirm(ada, pyotp.TOTP(secret).at(clock.now), client="test")
    sealed_under_a = await _raw(users_databases, ada.id)
    assert sealed_under_a is not None and _opens_with(A, sealed_under_a) == secret

    rotated = _settings(totp_keys=f"{B},{A}")
    clock.now += STEP
    assert await _two_factor(rotated, users_databases, clock).check(ada, pyotp.TOTP(secret).at(clock.now),
                                                                    client="test")
    report = await build_totp_rekey(rotated, users_databases)()
    assert (report.resealed, report.were_plain, report.unreadable) == (1, 0, 0)
    resealed = await _raw(users_databases, ada.id)
    assert resealed is not None and _opens_with(B, resealed) == secret
    with pytest.raises(InvalidToken):
        _opens_with(A, resealed)

    clock.now += STEP
    only_b = _two_factor(_settings(totp_keys=B), users_databases, clock)
    assert await only_b.check(ada, pyotp.TOTP(secret).at(clock.now), client="test")
    state = await build_users_store(users_databases).two_factor.state(ada.id)
    assert state is not None and state.enabled_at is not None and len(state.recovery_hashes) == 10, \
        "re-sealing changes the secret's sealing only"


async def test_a_secret_stored_in_plain_text_before_keeps_working_and_rekey_seals_it(
        users_databases: Databases) -> None:
    clock, ada, secret = Clock(), await _user(users_databases), pyotp.random_base32()
    # as the code before sealing wrote it
    await build_users_store(users_databases).two_factor.save(ada.id, TwoFactorState(secret=secret, enabled_at=T0))
    assert await _raw(users_databases, ada.id) == secret
    settings = _settings(totp_keys=A)
    assert await _two_factor(settings, users_databases, clock).check(ada, pyotp.TOTP(secret).at(clock.now),
                                                                     client="test")
    report = await build_totp_rekey(settings, users_databases)()
    assert (report.resealed, report.were_plain) == (1, 1)
    stored = await _raw(users_databases, ada.id)
    assert stored is not None and secret not in stored and _opens_with(A, stored) == secret
    clock.now += STEP
    assert await _two_factor(settings, users_databases, clock).check(ada, pyotp.TOTP(secret).at(clock.now),
                                                                     client="test")
    again = await build_totp_rekey(settings, users_databases)()
    assert (again.resealed, again.were_plain) == (1, 0), "safe to run again"


async def test_a_secret_no_configured_key_opens_fails_closed_and_is_left_alone(users_databases: Databases,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    clock, ada = Clock(), await _user(users_databases)
    under_a = _two_factor(_settings(totp_keys=A), users_databases, clock)
    secret = (await under_a.begin(ada)).secret
    await under_a.confirm(ada, pyotp.TOTP(secret).at(clock.now), client="test")
    sealed = await _raw(users_databases, ada.id)

    wrong = make_settings("sqlite+aiosqlite:///unused.db", secret_key="another-" + "z" * 40, totp_keys=C)
    clock.now += STEP
    assert not await _two_factor(wrong, users_databases, clock).check(ada, pyotp.TOTP(secret).at(clock.now),
                                                                      client="test")
    report = await build_totp_rekey(wrong, users_databases)()
    assert (report.resealed, report.unreadable) == (0, 1)
    assert await _raw(users_databases, ada.id) == sealed
    assert ada.id in caplog.text and secret not in caplog.text and str(sealed) not in caplog.text
