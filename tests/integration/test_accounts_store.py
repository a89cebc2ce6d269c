"""Users and refresh tokens on every users-store backend (each SQL database, and MongoDB — the nx-27017 emulator
unless SHOP_TEST_MONGODB_URL names a real mongod): unique e-mail keys, single-use tokens under concurrency,
revocation."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shop.bootstrap import UsersStore
from shop.domain.sessions import Outcome, RefreshToken, TwoFactorState
from shop.domain.users import EmailTaken, Role, User, UserStatus
from shop.services.ports import RefreshTokenStore, UserRepository

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _user(email: str, *, created_at_offset: int = 0, **extra) -> User:  # type: ignore[no-untyped-def]
    return User(id=str(uuid.uuid4()), email=email, email_key=email.casefold(), name="Ada",
                created_at=NOW + timedelta(seconds=created_at_offset), **extra)


async def test_a_user_round_trips_with_roles_and_hash(users_store: UsersStore) -> None:
    users = users_store.users
    ada = _user("Ada@Example.com", roles=frozenset({Role.CUSTOMER, Role.STAFF}))
    await users.add(ada, password_hash="hash-1")
    found = await users.by_email_key("ada@example.com")
    assert found is not None
    user, password_hash = found
    assert (user.id, user.email, user.roles, user.status, password_hash) == (
        ada.id, "Ada@Example.com", frozenset({Role.CUSTOMER, Role.STAFF}), UserStatus.ACTIVE, "hash-1")
    assert user.created_at == NOW
    await users.set_password_hash(ada.id, "hash-2")
    await users.set_roles(ada.id, frozenset({Role.CUSTOMER}))
    again = await users.by_email_key("ada@example.com")
    assert again is not None and again[1] == "hash-2" and again[0].roles == frozenset({Role.CUSTOMER})
    assert await users.by_id(ada.id) == again[0]
    assert await users.by_id("missing") is None


async def test_two_accounts_cannot_share_an_address_even_when_registered_at_once(users_store: UsersStore) -> None:
    users = users_store.users
    results = await asyncio.gather(*(users.add(_user("race@example.com"), password_hash="h") for _ in range(5)),
                                   return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, EmailTaken) for r in results if r is not None)


async def _token(tokens: RefreshTokenStore, users: UserRepository, *, family: str | None = None,
                 expires: timedelta = timedelta(days=1)) -> RefreshToken:
    owner = _user(f"{uuid.uuid4().hex}@example.com")
    await users.add(owner, password_hash="h")
    token = RefreshToken(token_hash=uuid.uuid4().hex * 2, user_id=owner.id, family_id=family or str(uuid.uuid4()),
                         created_at=NOW, expires_at=NOW + expires)
    await tokens.add(token)
    return token


async def test_a_refresh_token_is_consumed_once_and_then_reported_as_reused(users_store: UsersStore) -> None:
    users, tokens = users_store.users, users_store.refresh_tokens
    token = await _token(tokens, users)
    first = await tokens.consume(token.token_hash, now=NOW)
    second = await tokens.consume(token.token_hash, now=NOW + timedelta(seconds=1))
    assert first.outcome is Outcome.OK and first.token == token
    assert second.outcome is Outcome.REUSED and second.token is not None
    assert (await tokens.consume("f" * 64, now=NOW)).outcome is Outcome.UNKNOWN


async def test_of_concurrent_uses_of_one_token_exactly_one_wins(users_store: UsersStore) -> None:
    users, tokens = users_store.users, users_store.refresh_tokens
    token = await _token(tokens, users)
    results = await asyncio.gather(*(tokens.consume(token.token_hash, now=NOW) for _ in range(8)))
    assert [r.outcome for r in results].count(Outcome.OK) == 1


async def test_expired_and_revoked_tokens_are_refused(users_store: UsersStore) -> None:
    users, tokens = users_store.users, users_store.refresh_tokens
    old = await _token(tokens, users, expires=timedelta(seconds=-1))
    assert (await tokens.consume(old.token_hash, now=NOW)).outcome is Outcome.EXPIRED
    family = str(uuid.uuid4())
    a = await _token(tokens, users, family=family)
    b = await _token(tokens, users, family=family)
    other = await _token(tokens, users)
    await tokens.revoke_family(family, now=NOW)
    assert (await tokens.consume(a.token_hash, now=NOW)).outcome is Outcome.REUSED
    assert (await tokens.consume(b.token_hash, now=NOW)).outcome is Outcome.REUSED
    assert (await tokens.consume(other.token_hash, now=NOW)).outcome is Outcome.OK


@pytest.mark.parametrize("count", [3])
async def test_revoking_a_user_ends_every_session_of_theirs(users_store: UsersStore, count: int) -> None:
    users, tokens = users_store.users, users_store.refresh_tokens
    owner = _user("many@example.com")
    await users.add(owner, password_hash="h")
    hashes = []
    for n in range(count):
        token = RefreshToken(token_hash=f"{n:064d}", user_id=owner.id, family_id=str(uuid.uuid4()),
                             created_at=NOW, expires_at=NOW + timedelta(days=1))
        await tokens.add(token)
        hashes.append(token.token_hash)
    await tokens.revoke_user(owner.id, now=NOW)
    assert {(await tokens.consume(h, now=NOW)).outcome for h in hashes} == {Outcome.REUSED}


async def test_sessions_that_ended_are_listed_by_when_they_ended(users_store: UsersStore) -> None:
    users, tokens, ended = users_store.users, users_store.refresh_tokens, users_store.ended_sessions
    family, other = str(uuid.uuid4()), str(uuid.uuid4())
    first = await _token(tokens, users, family=family)
    await tokens.add(RefreshToken(token_hash=uuid.uuid4().hex * 2, user_id=first.user_id, family_id=family,
                                  created_at=NOW, expires_at=NOW + timedelta(days=1)))
    alive = await _token(tokens, users, family=other)
    assert not await ended.has_ended(family) and await ended.ended_since(NOW - timedelta(hours=1)) == []
    await tokens.revoke_family(family, now=NOW + timedelta(seconds=10))
    assert await ended.has_ended(family) and not await ended.has_ended(alive.family_id)
    assert not await ended.has_ended("never-seen")
    # one row per session however many tokens it had; MariaDB keeps whole seconds
    [(session, at)] = await ended.ended_since(NOW + timedelta(seconds=9))
    assert session == family and abs(at - (NOW + timedelta(seconds=10))) < timedelta(seconds=1)
    assert await ended.ended_since(NOW + timedelta(seconds=11)) == []


async def test_revoking_a_user_ends_each_of_their_sessions_at_once(users_store: UsersStore) -> None:
    users, tokens, ended = users_store.users, users_store.refresh_tokens, users_store.ended_sessions
    owner = _user("ends@example.com")
    await users.add(owner, password_hash="h")
    families = {str(uuid.uuid4()) for _ in range(3)}
    for n, family in enumerate(sorted(families)):
        await tokens.add(RefreshToken(token_hash=f"e{n:063d}", user_id=owner.id, family_id=family, created_at=NOW,
                                      expires_at=NOW + timedelta(days=1)))
    await tokens.revoke_user(owner.id, now=NOW + timedelta(minutes=1))
    assert {sid for sid, _ in await ended.ended_since(NOW)} == families


async def test_a_one_time_code_step_is_used_once_even_by_racing_logins(users_store: UsersStore) -> None:
    users, factors = users_store.users, users_store.two_factor
    owner = _user("otp@example.com")
    await users.add(owner, password_hash="h")
    await factors.save(owner.id, TwoFactorState(secret="S" * 32, enabled_at=NOW, last_step=100))
    assert not await factors.use_step(owner.id, 100) and not await factors.use_step(owner.id, 99)
    results = await asyncio.gather(*(factors.use_step(owner.id, 101) for _ in range(6)))
    assert results.count(True) == 1
    state = await factors.state(owner.id)
    assert state is not None and state.last_step == 101


async def test_a_recovery_code_is_struck_out_once_even_by_racing_logins(users_store: UsersStore) -> None:
    users, factors = users_store.users, users_store.two_factor
    owner = _user("recovery@example.com")
    await users.add(owner, password_hash="h")
    await factors.save(owner.id, TwoFactorState(secret="S" * 32, enabled_at=NOW, recovery_hashes=("a", "b", "c")))
    results = await asyncio.gather(*(factors.use_recovery(owner.id, "b") for _ in range(6)))
    assert results.count(True) == 1
    assert not await factors.use_recovery(owner.id, "b") and not await factors.use_recovery(owner.id, "z")
    state = await factors.state(owner.id)
    assert state is not None and state.recovery_hashes == ("a", "c")


async def test_two_factor_state_round_trips_and_is_cleared(users_store: UsersStore) -> None:
    users, factors = users_store.users, users_store.two_factor
    owner = _user("totp@example.com")
    await users.add(owner, password_hash="h")
    assert await factors.state(owner.id) is None
    pending = TwoFactorState(secret="P" * 32)
    await factors.save(owner.id, pending)
    assert await factors.state(owner.id) == pending
    enabled = TwoFactorState(secret="P" * 32, enabled_at=NOW, recovery_hashes=("x", "y"), last_step=7)
    await factors.save(owner.id, enabled)
    assert await factors.state(owner.id) == enabled
    user = await users.by_id(owner.id)
    assert user is not None and user.totp_enabled_at == NOW and user.has_two_factor
    await factors.save(owner.id, None)
    assert await factors.state(owner.id) is None
    cleared = await users.by_id(owner.id)
    assert cleared is not None and not cleared.has_two_factor
    assert await factors.state("missing") is None


async def test_a_verified_address_is_kept_with_its_time_in_utc(users_store: UsersStore) -> None:
    users = users_store.users
    owner = _user("verify@example.com")
    await users.add(owner, password_hash="h")
    await users.mark_email_verified(owner.id, at=NOW + timedelta(minutes=5))
    stored = await users.by_id(owner.id)
    assert stored is not None and stored.email_verified_at == NOW + timedelta(minutes=5)
    assert stored.email_verified_at.utcoffset() == timedelta(0) and stored.created_at is not None
    assert stored.created_at.utcoffset() == timedelta(0)


async def test_accounts_are_found_by_part_of_their_address_and_by_role(users_store: UsersStore) -> None:
    users = users_store.users
    marker = uuid.uuid4().hex[:8]
    people = [_user(f"Ann.{marker}@Example.com", created_at_offset=0),
              _user(f"bob_{marker}@example.com", roles=frozenset({Role.CUSTOMER, Role.STAFF}), created_at_offset=1),
              _user(f"cy%{marker}@example.org", roles=frozenset(Role), created_at_offset=2)]
    for person in people:
        await users.add(person, password_hash="h")
    found = await users.find(email=marker.upper())
    assert [u.id for u in found.items] == [p.id for p in reversed(people)] and found.total == 3  # newest first
    assert [u.email for u in (await users.find(email=f"ann.{marker}@example")).items] == [people[0].email]
    assert (await users.find(email="%" + marker)).total == 1  # a LIKE wildcard is a plain character
    assert (await users.find(email=f"_{marker}")).total == 1
    staff = await users.find(email=marker, roles=frozenset({Role.STAFF, Role.ADMIN}))
    assert {u.id for u in staff.items} == {people[1].id, people[2].id}
    admins = await users.find(email=marker, roles=frozenset({Role.ADMIN}))
    assert [u.id for u in admins.items] == [people[2].id]
    paged = await users.find(email=marker, page=2, limit=2)
    assert [u.id for u in paged.items] == [people[0].id] and (paged.total, paged.page, paged.limit) == (3, 2, 2)
    assert (await users.find(email="no-such-" + marker)).items == []


async def test_an_account_is_disabled_and_enabled_again(users_store: UsersStore) -> None:
    users = users_store.users
    owner = _user("switch@example.com")
    await users.add(owner, password_hash="h")
    await users.set_status(owner.id, UserStatus.DISABLED)
    stored = await users.by_id(owner.id)
    assert stored is not None and stored.status is UserStatus.DISABLED and not stored.is_active
    found = await users.by_email_key("switch@example.com")
    assert found is not None and found[0].status is UserStatus.DISABLED
    await users.set_status(owner.id, UserStatus.ACTIVE)
    again = await users.by_id(owner.id)
    assert again is not None and again.is_active
