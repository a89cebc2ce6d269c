"""Phone codes on every users-store backend (each SQL database, and MongoDB — the nx-27017 emulator unless
SHOP_TEST_MONGODB_URL names a real mongod): the newest code wins, tries are counted once each even when they race,
codes work once."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

from shop.bootstrap import UsersStore
from shop.domain.errors import InvalidValue
from shop.domain.phones import MAX_TRIES, PhoneCode
from shop.domain.users import User
from shop.infrastructure.security.throttle import AttemptThrottle
from shop.infrastructure.sms.numbers import LibPhoneNumbers
from shop.services.phone_verification import PhoneVerification
from shop.services.ports import UserRepository

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NUMBER = "+4915123456789"
CLIENT = "203.0.113.7"


async def _owner(users: UserRepository) -> User:
    user = User(id=str(uuid.uuid4()), email=f"{uuid.uuid4().hex[:8]}@example.com", email_key="", name="Ada",
                created_at=NOW)
    user.email_key = user.email.casefold()
    await users.add(user, password_hash="h")
    return user


def _code(user: User, *, at: datetime = NOW, ttl: timedelta = timedelta(minutes=10)) -> PhoneCode:
    return PhoneCode(id=str(uuid.uuid4()), user_id=user.id, phone=NUMBER, code_hash="ab" * 32, created_at=at,
                     expires_at=at + ttl)


async def test_a_code_round_trips_and_the_newest_replaces_the_unused_ones(users_store: UsersStore) -> None:
    users, codes = users_store.users, users_store.phone_codes
    ada, bob = await _owner(users), await _owner(users)
    assert await codes.latest(ada.id) is None
    first = _code(ada)
    await codes.add(first)
    assert await codes.latest(ada.id) == first
    second = _code(ada, at=NOW + timedelta(seconds=1))
    await codes.add(second)
    await codes.add(_code(bob))
    assert await codes.latest(ada.id) == second
    assert await codes.take_try(first.id, now=NOW) is None  # replaced: it is gone
    assert await codes.use(second.id, now=NOW) is True
    assert await codes.use(second.id, now=NOW) is False
    used = await codes.latest(ada.id)
    assert used is not None and used.used_at == NOW
    # a used code is kept as the record of a verification, and a new code in the same second comes first
    third = _code(ada, at=NOW)
    await codes.add(third)
    assert await codes.latest(ada.id) == third


async def test_tries_are_counted_up_to_five_and_stop_at_expiry(users_store: UsersStore) -> None:
    users, codes = users_store.users, users_store.phone_codes
    ada = await _owner(users)
    code = _code(ada)
    await codes.add(code)
    assert [await codes.take_try(code.id, now=NOW) for _ in range(MAX_TRIES + 2)] == [1, 2, 3, 4, 5, None, None]
    fresh = _code(ada)
    await codes.add(fresh)
    assert await codes.take_try(fresh.id, now=fresh.expires_at) is None
    assert await codes.take_try(fresh.id, now=fresh.expires_at - timedelta(seconds=1)) == 1
    await codes.use(fresh.id, now=NOW)
    assert await codes.take_try(fresh.id, now=NOW) is None


async def test_racing_tries_never_go_past_five(users_store: UsersStore) -> None:
    users, codes = users_store.users, users_store.phone_codes
    ada = await _owner(users)
    code = _code(ada)
    await codes.add(code)
    results = await asyncio.gather(*(codes.take_try(code.id, now=NOW) for _ in range(12)))
    assert sorted(r for r in results if r is not None) == [1, 2, 3, 4, 5]
    stored = await codes.latest(ada.id)
    assert stored is not None and stored.tries == MAX_TRIES


async def test_racing_wrong_codes_through_the_service_use_five_tries_at_most(users_store: UsersStore) -> None:
    users, codes = users_store.users, users_store.phone_codes
    texts: list[str] = []

    class Inbox:
        async def send(self, to: str, body: str) -> None:
            texts.append(body)

    phones = PhoneVerification(codes=codes, users=users, numbers=LibPhoneNumbers(), sms=Inbox(),
                               throttle=AttemptThrottle({"sms-number": "3/hour", "sms-user": "3/hour"}),
                               guesses=AttemptThrottle({"code-account": "100/hour", "code-client": "100/hour"}),
                               key="secret", shop_name="Acme")
    ada = await _owner(users)
    await phones.send_code(ada, "+49 1512 3456789")
    found = re.match(r"\d{6}", texts[-1])
    assert found is not None
    code = found.group(0)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    results = await asyncio.gather(*(phones.verify(ada, wrong, client=CLIENT) for _ in range(10)),
                                   return_exceptions=True)
    assert all(isinstance(r, InvalidValue) and r.field == "code" for r in results)
    stored = await codes.latest(ada.id)
    assert stored is not None and stored.tries == MAX_TRIES and stored.code_hash != code
    refused = await asyncio.gather(phones.verify(ada, code, client=CLIENT), return_exceptions=True)
    assert isinstance(refused[0], InvalidValue)
    assert (await users.by_id(ada.id)).phone_verified_at is None  # type: ignore[union-attr]


async def test_the_right_code_sent_twice_at_once_verifies_once(users_store: UsersStore) -> None:
    users, codes = users_store.users, users_store.phone_codes
    ada = await _owner(users)
    code = _code(ada)
    await codes.add(code)
    results = await asyncio.gather(*(codes.use(code.id, now=NOW) for _ in range(6)))
    assert results.count(True) == 1


async def test_set_phone_records_the_verified_number(users_store: UsersStore) -> None:
    users = users_store.users
    ada = await _owner(users)
    await users.set_phone(ada.id, NUMBER, verified_at=NOW)
    stored = await users.by_id(ada.id)
    assert stored is not None and (stored.phone, stored.phone_verified_at) == (NUMBER, NOW)
    await users.set_phone(ada.id, None, verified_at=None)
    cleared = await users.by_id(ada.id)
    assert cleared is not None and (cleared.phone, cleared.phone_verified_at) == (None, None)


async def test_purge_forgets_codes_expired_before_the_cutoff_only(users_store: UsersStore) -> None:
    users, codes = users_store.users, users_store.phone_codes
    old_user, new_user = await _owner(users), await _owner(users)
    old, new = _code(old_user, at=NOW - timedelta(days=3)), _code(new_user)
    await codes.add(old)
    await codes.add(new)
    gone = await codes.purge(expired_before=NOW - timedelta(days=1))
    assert gone >= 1
    assert await codes.latest(old_user.id) is None
    assert await codes.latest(new_user.id) == new
