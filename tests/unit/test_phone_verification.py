"""Phone verification with fakes: codes expire, die after five tries, are kept hashed, and texts are limited."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from datetime import datetime, timedelta

import pytest
from auth_fakes import FakeClock, FakeThrottle, FakeUsers

from shop.domain.errors import InvalidValue
from shop.domain.phones import MAX_TRIES, PhoneCode
from shop.domain.users import TooManyAttempts, User
from shop.infrastructure.security.throttle import AttemptThrottle
from shop.services.phone_verification import PhoneVerification, SmsNotSent

NUMBER = "+4915123456789"
OTHER_NUMBER = "+33612345678"
KEY = "a-server-secret-for-tests"
CLIENT = "203.0.113.7"


class FakeUsersWithPhones(FakeUsers):
    async def set_phone(self, user_id: str, phone: str | None, *, verified_at: datetime | None) -> None:
        self.rows[user_id] = dataclasses.replace(self.rows[user_id], phone=phone, phone_verified_at=verified_at)


class FakePhoneCodes:
    """PhoneCodeStore in memory, with the SQL store's rules: one unused code per user, tries counted once."""

    def __init__(self) -> None:
        self.rows: dict[str, PhoneCode] = {}

    async def add(self, code: PhoneCode) -> None:
        self.rows = {k: r for k, r in self.rows.items() if r.user_id != code.user_id or r.used_at is not None}
        self.rows[code.id] = code

    async def latest(self, user_id: str) -> PhoneCode | None:
        mine = [r for r in self.rows.values() if r.user_id == user_id]
        return max(mine, key=lambda r: (r.used_at is None, r.created_at), default=None)

    async def take_try(self, code_id: str, *, now: datetime) -> int | None:
        row = self.rows.get(code_id)
        if row is None or row.used_at is not None or row.expires_at <= now or row.tries >= MAX_TRIES:
            return None
        self.rows[code_id] = dataclasses.replace(row, tries=row.tries + 1)
        return row.tries + 1

    async def use(self, code_id: str, *, now: datetime) -> bool:
        row = self.rows.get(code_id)
        if row is None or row.used_at is not None:
            return False
        self.rows[code_id] = dataclasses.replace(row, used_at=now)
        return True


class FakeNumbers:
    """PhoneNumbers that takes "+" and 8 to 15 digits, spaces allowed."""

    def normalize(self, raw: str) -> str:
        number = "".join(raw.split())
        if not re.fullmatch(r"\+[1-9]\d{7,14}", number):
            raise InvalidValue("phone", "is not a valid phone number")
        return number


class FakeSms:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.broken = False

    async def send(self, to: str, body: str) -> None:
        if self.broken:
            raise SmsNotSent("the gateway is down")
        self.sent.append((to, body))

    def last_code(self, to: str = NUMBER) -> str:
        body = next(b for t, b in reversed(self.sent) if t == to)
        found = re.match(r"(\d{6}) ", body)
        assert found is not None, body
        return found.group(1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def users() -> FakeUsersWithPhones:
    return FakeUsersWithPhones()


@pytest.fixture
def codes() -> FakePhoneCodes:
    return FakePhoneCodes()


@pytest.fixture
def sms() -> FakeSms:
    return FakeSms()


@pytest.fixture
def throttle() -> FakeThrottle:
    return FakeThrottle(limit=3, retry_after=1800)


@pytest.fixture
def guesses() -> FakeThrottle:
    return FakeThrottle(limit=10, retry_after=900)


@pytest.fixture
def phones(codes: FakePhoneCodes, users: FakeUsersWithPhones, sms: FakeSms, throttle: FakeThrottle,
           guesses: FakeThrottle, clock: FakeClock) -> PhoneVerification:
    return PhoneVerification(codes=codes, users=users, numbers=FakeNumbers(), sms=sms, throttle=throttle,
                             guesses=guesses, key=KEY, shop_name="Acme", clock=clock)


async def _user(users: FakeUsersWithPhones, name: str = "ada") -> User:
    user = User(id=f"user-{name}", email=f"{name}@example.com", email_key=f"{name}@example.com", name=name)
    await users.add(user, password_hash="h")
    return user


@pytest.fixture
async def ada(users: FakeUsersWithPhones) -> User:
    return await _user(users)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_the_code_texted_to_a_number_verifies_it(phones: PhoneVerification, sms: FakeSms, ada: User,
                                                       users: FakeUsersWithPhones, clock: FakeClock) -> None:
    sent = await phones.send_code(ada, "+49 1512 3456789")
    assert sent.phone == NUMBER and sent.expires_at == clock.now + timedelta(minutes=10)
    [(to, body)] = sms.sent
    assert to == NUMBER
    assert body == f"{sms.last_code()} is your Acme verification code. It expires in 10 minutes."
    verified = await phones.verify(ada, f" {sms.last_code()} ", client=CLIENT)
    assert verified.phone == NUMBER and verified.phone_verified_at == clock.now
    stored = await users.by_id(ada.id)
    assert stored is not None and stored.phone == NUMBER and stored.phone_verified_at == clock.now


async def test_the_code_is_kept_only_as_a_keyed_hash(phones: PhoneVerification, sms: FakeSms, ada: User,
                                                     codes: FakePhoneCodes) -> None:
    await phones.send_code(ada, NUMBER)
    code = sms.last_code()
    [row] = codes.rows.values()
    assert row.code_hash != code and code not in row.code_hash
    assert row.code_hash != hashlib.sha256(code.encode()).hexdigest()  # not guessable in a million tries
    assert re.fullmatch(r"[0-9a-f]{64}", row.code_hash)
    assert row.phone == NUMBER and row.tries == 0 and row.used_at is None


async def test_a_code_works_for_ten_minutes_and_then_has_expired(phones: PhoneVerification, sms: FakeSms,
                                                                 ada: User, clock: FakeClock) -> None:
    await phones.send_code(ada, NUMBER)
    clock.advance(timedelta(minutes=10))
    with pytest.raises(InvalidValue, match="expired") as refused:
        await phones.verify(ada, sms.last_code(), client=CLIENT)
    assert refused.value.field == "code"
    await phones.send_code(ada, NUMBER)
    clock.advance(timedelta(minutes=9, seconds=59))
    assert (await phones.verify(ada, sms.last_code(), client=CLIENT)).phone == NUMBER


async def test_five_wrong_tries_kill_the_code_even_for_the_right_one(phones: PhoneVerification, sms: FakeSms,
                                                                     ada: User, codes: FakePhoneCodes) -> None:
    await phones.send_code(ada, NUMBER)
    code = sms.last_code()
    messages = []
    for _ in range(MAX_TRIES):
        with pytest.raises(InvalidValue) as wrong:
            await phones.verify(ada, _wrong(code), client=CLIENT)
        assert wrong.value.field == "code"
        messages.append(wrong.value.message)
    assert messages[0] == "is wrong; 4 tries left" and messages[3] == "is wrong; 1 try left"
    assert "last try" in messages[4]
    with pytest.raises(InvalidValue, match="tried 5 times"):
        await phones.verify(ada, code, client=CLIENT)
    assert [r.tries for r in codes.rows.values()] == [MAX_TRIES]


async def test_a_new_code_replaces_the_one_before(phones: PhoneVerification, sms: FakeSms, ada: User,
                                                  clock: FakeClock) -> None:
    await phones.send_code(ada, NUMBER)
    first = sms.last_code()
    clock.advance(timedelta(seconds=30))
    await phones.send_code(ada, NUMBER)
    second = sms.last_code()
    if first != second:  # one time in a million the same digits come up again
        with pytest.raises(InvalidValue, match="wrong"):
            await phones.verify(ada, first, client=CLIENT)
    assert (await phones.verify(ada, second, client=CLIENT)).phone == NUMBER


async def test_a_new_code_for_another_number_verifies_that_number(phones: PhoneVerification, sms: FakeSms,
                                                                  ada: User) -> None:
    await phones.send_code(ada, NUMBER)
    await phones.send_code(ada, OTHER_NUMBER)
    assert (await phones.verify(ada, sms.last_code(OTHER_NUMBER), client=CLIENT)).phone == OTHER_NUMBER


async def test_a_code_works_once(phones: PhoneVerification, sms: FakeSms, ada: User) -> None:
    await phones.send_code(ada, NUMBER)
    await phones.verify(ada, sms.last_code(), client=CLIENT)
    with pytest.raises(InvalidValue, match="already used") as again:
        await phones.verify(ada, sms.last_code(), client=CLIENT)
    assert again.value.field == "code"


async def test_a_code_belongs_to_the_user_it_was_sent_for(phones: PhoneVerification, sms: FakeSms, ada: User,
                                                          users: FakeUsersWithPhones) -> None:
    bob = await _user(users, "bob")
    await phones.send_code(ada, NUMBER)
    with pytest.raises(InvalidValue, match="no code was sent") as refused:
        await phones.verify(bob, sms.last_code(), client=CLIENT)
    assert refused.value.field == "code"


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "12345\x00"])
async def test_what_cannot_be_a_code_is_refused_without_using_a_try(phones: PhoneVerification, ada: User,
                                                                    codes: FakePhoneCodes, typed: str) -> None:
    await phones.send_code(ada, NUMBER)
    with pytest.raises(InvalidValue, match="6 digits") as refused:
        await phones.verify(ada, typed, client=CLIENT)
    assert refused.value.field == "code"
    assert [r.tries for r in codes.rows.values()] == [0]


async def test_a_bad_number_is_refused_before_anything_is_sent(phones: PhoneVerification, sms: FakeSms,
                                                               ada: User, throttle: FakeThrottle) -> None:
    with pytest.raises(InvalidValue) as refused:
        await phones.send_code(ada, "12")
    assert refused.value.field == "phone" and sms.sent == [] and throttle.failures == {}


async def test_three_texts_per_number_then_429_for_every_user(phones: PhoneVerification, sms: FakeSms, ada: User,
                                                              users: FakeUsersWithPhones) -> None:
    for _ in range(3):
        await phones.send_code(ada, NUMBER)
    with pytest.raises(TooManyAttempts) as refused:
        await phones.send_code(ada, NUMBER)
    assert refused.value.retry_after == 1800
    bob = await _user(users, "bob")
    with pytest.raises(TooManyAttempts):  # someone else cannot flood the same number either
        await phones.send_code(bob, NUMBER)
    assert len(sms.sent) == 3


async def test_three_texts_per_user_whatever_the_numbers(phones: PhoneVerification, sms: FakeSms,
                                                         ada: User) -> None:
    for n in range(3):
        await phones.send_code(ada, f"+491512345678{n}")
    with pytest.raises(TooManyAttempts):
        await phones.send_code(ada, OTHER_NUMBER)
    assert len(sms.sent) == 3


async def test_with_the_real_limiter_a_fourth_text_within_the_hour_waits_for_the_window(
        codes: FakePhoneCodes, users: FakeUsersWithPhones, sms: FakeSms, ada: User) -> None:
    throttle = AttemptThrottle({"sms-number": "3/hour", "sms-user": "3/hour"})
    phones = PhoneVerification(codes=codes, users=users, numbers=FakeNumbers(), sms=sms, throttle=throttle,
                               guesses=FakeThrottle(), key=KEY, shop_name="Acme")
    for _ in range(3):
        await phones.send_code(ada, NUMBER)
    with pytest.raises(TooManyAttempts) as refused:
        await phones.send_code(ada, NUMBER)
    assert 3500 < refused.value.retry_after <= 3600


async def test_a_text_the_gateway_refused_still_counts_and_leaves_no_working_old_code(
        phones: PhoneVerification, sms: FakeSms, ada: User, throttle: FakeThrottle) -> None:
    await phones.send_code(ada, NUMBER)
    old = sms.last_code()
    sms.broken = True
    with pytest.raises(SmsNotSent):
        await phones.send_code(ada, NUMBER)
    assert max(throttle.failures.values()) == 2
    sms.broken = False
    with pytest.raises(InvalidValue):  # the old code was replaced; the new one never arrived
        await phones.verify(ada, old, client=CLIENT)


async def test_no_code_or_number_reaches_the_log(phones: PhoneVerification, sms: FakeSms, ada: User,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await phones.send_code(ada, NUMBER)
    code = sms.last_code()
    with pytest.raises(InvalidValue) as wrong:
        await phones.verify(ada, _wrong(code), client=CLIENT)
    await phones.verify(ada, code, client=CLIENT)
    assert code not in caplog.text and NUMBER not in caplog.text and code not in str(wrong.value)


async def test_wrong_codes_count_against_the_account_and_the_client(phones: PhoneVerification, sms: FakeSms,
                                                                   ada: User, guesses: FakeThrottle) -> None:
    await phones.send_code(ada, NUMBER)
    with pytest.raises(InvalidValue):
        await phones.verify(ada, _wrong(sms.last_code()), client=CLIENT)
    assert guesses.failures == {f"code-account:{ada.id}": 1, f"code-client:{CLIENT}": 1}


async def test_once_the_account_has_guessed_too_often_even_the_right_code_is_refused(
        phones: PhoneVerification, sms: FakeSms, ada: User, guesses: FakeThrottle,
        users: FakeUsersWithPhones) -> None:
    await phones.send_code(ada, NUMBER)
    guesses.failures[f"code-account:{ada.id}"] = guesses.limit  # the other codes of this window were wrong
    with pytest.raises(TooManyAttempts) as refused:
        await phones.verify(ada, sms.last_code(), client="198.51.100.1")
    assert refused.value.retry_after == 900
    assert (await users.by_id(ada.id)).phone_verified_at is None  # type: ignore[union-attr]
