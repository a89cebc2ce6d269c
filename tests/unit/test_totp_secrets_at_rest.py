"""2FA secrets sealed at rest: the Fernet box (rotation, plain-text values from before), and the two-factor service
failing closed when no key opens a secret."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

import pyotp
import pytest
from cryptography.fernet import Fernet, InvalidToken
from tests.unit.auth_fakes import FakeClock, FakeThrottle

from shop.domain.sessions import TwoFactorState
from shop.domain.users import InvalidCredentials, User
from shop.infrastructure.security.secret_box import PREFIX, FernetSecretBox, new_key
from shop.infrastructure.security.totp import PyOtpPasswords
from shop.services.ports import SecretUnreadable
from shop.services.two_factor import TwoFactor, reseal_secrets

A, B, C = new_key(), new_key(), new_key()
SECRET = pyotp.random_base32()
ADA = User(id="user-ada", email="ada@example.com", email_key="ada@example.com", name="Ada")


class FakeFactors:
    """TwoFactorStore and TwoFactorSecrets in memory, keeping what it is given as the database would."""

    def __init__(self) -> None:
        self.rows: dict[str, TwoFactorState] = {}

    async def state(self, user_id: str) -> TwoFactorState | None:
        return self.rows.get(user_id)

    async def save(self, user_id: str, state: TwoFactorState | None) -> None:
        if state is None:
            self.rows.pop(user_id, None)
        else:
            self.rows[user_id] = state

    async def use_step(self, user_id: str, step: int) -> bool:
        row = self.rows[user_id]
        if row.last_step is not None and row.last_step >= step:
            return False
        self.rows[user_id] = TwoFactorState(row.secret, row.enabled_at, row.recovery_hashes, step)
        return True

    async def use_recovery(self, user_id: str, code_hash: str) -> bool:
        row = self.rows[user_id]
        if code_hash not in row.recovery_hashes:
            return False
        left = tuple(h for h in row.recovery_hashes if h != code_hash)
        self.rows[user_id] = TwoFactorState(row.secret, row.enabled_at, left, row.last_step)
        return True

    async def secrets_after(self, user_id: str, *, limit: int) -> Sequence[tuple[str, str]]:
        return sorted((k, v.secret) for k, v in self.rows.items() if k > user_id)[:limit]

    async def replace_secret(self, user_id: str, *, was: str, now: str) -> bool:
        row = self.rows.get(user_id)
        if row is None or row.secret != was:
            return False
        self.rows[user_id] = TwoFactorState(now, row.enabled_at, row.recovery_hashes, row.last_step)
        return True


def _fernet_alone(key: str, stored: str) -> str:
    assert stored.startswith(PREFIX)
    return Fernet(key).decrypt(stored.removeprefix(PREFIX)).decode()


# the box


def test_a_sealed_secret_does_not_show_the_secret_and_opens_again() -> None:
    box = FernetSecretBox([A])
    sealed = box.seal(SECRET)
    assert SECRET not in sealed and sealed != box.seal(SECRET), "each sealing is fresh"
    assert box.open(sealed) == SECRET
    assert len(sealed) <= 255, "fits the users table's totp_secret column"


def test_a_secret_sealed_under_the_old_key_opens_after_a_new_key_is_put_first() -> None:
    sealed = FernetSecretBox([A]).seal(SECRET)
    rotated = FernetSecretBox([B, A])
    assert rotated.open(sealed) == SECRET
    assert _fernet_alone(B, rotated.seal(SECRET)) == SECRET, "the first key seals"
    resealed = rotated.reseal(sealed)
    assert _fernet_alone(B, resealed) == SECRET and FernetSecretBox([B]).open(resealed) == SECRET
    with pytest.raises(InvalidToken):
        _fernet_alone(A, resealed)


def test_a_secret_kept_in_plain_text_before_sealing_began_opens_as_it_is_and_is_sealed_on_reseal() -> None:
    box = FernetSecretBox([A])
    assert box.open(SECRET) == SECRET
    assert _fernet_alone(A, box.reseal(SECRET)) == SECRET


@pytest.mark.parametrize("stored", [FernetSecretBox([C]).seal(SECRET), PREFIX + "not-a-token", PREFIX + "ünïcode",
                                    PREFIX])
def test_a_secret_no_key_opens_is_unreadable_and_the_error_shows_nothing_of_it(stored: str) -> None:
    box = FernetSecretBox([A, B])
    for attempt in (box.open, box.reseal):
        with pytest.raises(SecretUnreadable) as raised:
            attempt(stored)
        assert str(raised.value) == "" and raised.value.__cause__ is None


# the service


def _service(box: FernetSecretBox, factors: FakeFactors, clock: FakeClock) -> TwoFactor:
    return TwoFactor(store=factors, otp=PyOtpPasswords(), box=box, issuer="shop", throttle=FakeThrottle(limit=100),
                     clock=clock)


def _code(secret: str, clock: FakeClock) -> str:
    return pyotp.TOTP(secret).at(clock.now)


async def test_enrolment_stores_the_secret_sealed_and_codes_still_work() -> None:
    factors, clock, box = FakeFactors(), FakeClock(), FernetSecretBox([A])
    two_factor = _service(box, factors, clock)
    enrolment = await two_factor.begin(ADA)
    assert factors.rows[ADA.id].secret != enrolment.secret
    assert _fernet_alone(A, factors.rows[ADA.id].secret) == enrolment.secret
    await two_factor.confirm(ADA, _code(enrolment.secret, clock), client="c")
    assert _fernet_alone(A, factors.rows[ADA.id].secret) == enrolment.secret
    clock.advance(timedelta(seconds=30))
    assert await two_factor.check(ADA, _code(enrolment.secret, clock), client="c")


async def test_a_pending_secret_kept_in_plain_text_is_confirmed_and_then_kept_sealed() -> None:
    factors, clock = FakeFactors(), FakeClock()
    await factors.save(ADA.id, TwoFactorState(secret=SECRET))
    await _service(FernetSecretBox([A]), factors, clock).confirm(ADA, _code(SECRET, clock), client="c")
    assert _fernet_alone(A, factors.rows[ADA.id].secret) == SECRET


async def test_codes_are_refused_and_the_failure_logged_without_the_secret_when_no_key_opens_it(
        caplog: pytest.LogCaptureFixture) -> None:
    factors, clock = FakeFactors(), FakeClock()
    two_factor = _service(FernetSecretBox([A]), factors, clock)
    enrolment = await two_factor.begin(ADA)
    recovery = await two_factor.confirm(ADA, _code(enrolment.secret, clock), client="c")
    sealed = factors.rows[ADA.id].secret
    locked_out = _service(FernetSecretBox([B]), factors, clock)  # key A retired too early
    clock.advance(timedelta(seconds=30))
    with caplog.at_level(logging.ERROR, logger="shop.services.two_factor"):
        assert await locked_out.check(ADA, _code(enrolment.secret, clock), client="c") is False
        with pytest.raises(InvalidCredentials):
            await locked_out.disable(ADA, _code(enrolment.secret, clock), client="c")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and all(ADA.id in r.getMessage() for r in errors)
    assert not any(enrolment.secret in r.getMessage() or sealed in r.getMessage() for r in caplog.records)
    assert factors.rows[ADA.id].enabled_at is not None, "2FA stays on: nothing was bypassed"
    # recovery codes are hashes, not sealed: they still let the owner in, as they are meant to
    assert await locked_out.check(ADA, recovery[0], client="c") is True


async def test_confirming_a_pending_secret_no_key_opens_fails_and_a_new_enrolment_starts_over() -> None:
    factors, clock = FakeFactors(), FakeClock()
    first = await _service(FernetSecretBox([A]), factors, clock).begin(ADA)
    two_factor = _service(FernetSecretBox([B]), factors, clock)
    with pytest.raises(InvalidCredentials):
        await two_factor.confirm(ADA, _code(first.secret, clock), client="c")
    again = await two_factor.begin(ADA)
    assert await two_factor.confirm(ADA, _code(again.secret, clock), client="c")


async def test_resealing_moves_every_secret_to_the_first_key_and_leaves_unreadable_ones_alone() -> None:
    factors = FakeFactors()
    old, plain, foreign = FernetSecretBox([A]).seal("OLDOLDOLD"), "PLAINPLAIN", FernetSecretBox([C]).seal("LOST")
    for number, secret in enumerate((old, plain, foreign)):
        await factors.save(f"user-{number}", TwoFactorState(secret=secret))
    report = await reseal_secrets(store=factors, box=FernetSecretBox([B, A]))
    assert (report.resealed, report.were_plain, report.unreadable) == (2, 1, 1)
    assert _fernet_alone(B, factors.rows["user-0"].secret) == "OLDOLDOLD"
    assert _fernet_alone(B, factors.rows["user-1"].secret) == "PLAINPLAIN"
    assert factors.rows["user-2"].secret == foreign


async def test_resealing_does_not_overwrite_a_secret_replaced_meanwhile() -> None:
    factors, box = FakeFactors(), FernetSecretBox([B, A])
    await factors.save("user-1", TwoFactorState(secret=FernetSecretBox([A]).seal("BEFORE")))
    newer = box.seal("AFTER")

    class Racing(FakeFactors):
        async def secrets_after(self, user_id: str, *, limit: int) -> Sequence[tuple[str, str]]:
            listed = await factors.secrets_after(user_id, limit=limit)
            if listed:  # a new enrolment lands between the read and the write
                await factors.save("user-1", TwoFactorState(secret=newer))
            return listed

        async def replace_secret(self, user_id: str, *, was: str, now: str) -> bool:
            return await factors.replace_secret(user_id, was=was, now=now)

    report = await reseal_secrets(store=Racing(), box=box)
    assert report.resealed == 0 and factors.rows["user-1"].secret == newer
