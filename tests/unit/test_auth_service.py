from __future__ import annotations

from datetime import timedelta

import pytest
from auth_fakes import FakeAccessTokens, FakeClock, FakeHasher, FakeRefreshTokens, FakeThrottle, FakeUsers

from shop.domain.errors import InvalidValue
from shop.domain.sessions import RefreshToken
from shop.domain.users import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    Role,
    TooManyAttempts,
    User,
)
from shop.services.auth import AuthService, hash_token

EMAIL = "Ada.Lovelace@Example.com"
PASSWORD = "analytical engine"
CLIENT = "203.0.113.7"


@pytest.fixture
def users() -> FakeUsers:
    return FakeUsers()


@pytest.fixture
def tokens() -> FakeRefreshTokens:
    return FakeRefreshTokens()


@pytest.fixture
def hasher() -> FakeHasher:
    return FakeHasher()


@pytest.fixture
def throttle() -> FakeThrottle:
    return FakeThrottle(limit=3)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def auth(users, tokens, hasher, throttle, clock) -> AuthService:
    return AuthService(users=users, refresh_tokens=tokens, ended_sessions=tokens, hasher=hasher,
                       access=FakeAccessTokens(), throttle=throttle, refresh_ttl=timedelta(days=30), clock=clock)


@pytest.fixture
async def ada(auth) -> User:
    return await auth.register(email=EMAIL, password=PASSWORD, name="Ada Lovelace")


ACCOUNT_KEY = "account:ada.lovelace@example.com"
CLIENT_KEY = f"client:{CLIENT}"


# register


async def test_registering_stores_the_user_with_a_hash_of_the_password(auth, users, clock) -> None:
    user = await auth.register(email=" Ada.Lovelace@Example.COM ", password=PASSWORD, name="Ada")
    assert user.email == "Ada.Lovelace@example.com"
    assert user.email_key == "ada.lovelace@example.com"
    assert user.created_at == clock.now
    assert users.rows[user.id] is user
    assert users.hashes[user.id] == "h:" + PASSWORD


async def test_a_new_account_is_an_active_customer_by_default(auth) -> None:
    user = await auth.register(email=EMAIL, password=PASSWORD)
    assert user.roles == frozenset({Role.CUSTOMER})
    assert user.is_active


@pytest.mark.parametrize("again", ["ada.lovelace@example.com", "ADA.LOVELACE@EXAMPLE.COM", " Ada.Lovelace@example.COM"])
async def test_an_e_mail_already_registered_in_any_case_is_taken(auth, ada, users, again: str) -> None:
    with pytest.raises(EmailTaken):
        await auth.register(email=again, password="another good one")
    assert list(users.rows) == [ada.id]


async def test_a_weak_password_is_refused_naming_the_password(auth, users) -> None:
    with pytest.raises(InvalidValue) as error:
        await auth.register(email=EMAIL, password="short")
    assert error.value.field == "password"
    assert users.rows == {}


async def test_a_password_equal_to_the_e_mail_is_refused_at_registration(auth) -> None:
    with pytest.raises(InvalidValue) as error:
        await auth.register(email=EMAIL, password="ada.lovelace@example.com")
    assert error.value.field == "password"


async def test_a_malformed_e_mail_is_refused_at_registration_naming_the_e_mail(auth) -> None:
    with pytest.raises(InvalidValue) as error:
        await auth.register(email="ada@example", password=PASSWORD)
    assert error.value.field == "email"


async def test_whitespace_in_the_name_is_collapsed(auth) -> None:
    user = await auth.register(email=EMAIL, password=PASSWORD, name="  Ada \t  King\n Lovelace  ")
    assert user.name == "Ada King Lovelace"


async def test_a_name_longer_than_200_characters_is_refused(auth) -> None:
    with pytest.raises(InvalidValue) as error:
        await auth.register(email=EMAIL, password=PASSWORD, name="x" * 201)
    assert error.value.field == "name"


async def test_create_admin_gives_every_role(auth) -> None:
    admin = await auth.create_admin(email="root@example.com", password=PASSWORD, name="Root")
    assert admin.roles == frozenset({Role.CUSTOMER, Role.STAFF, Role.ADMIN})
    assert admin.has_role(Role.ADMIN)


# login


async def test_logging_in_opens_a_session_for_the_user(auth, ada, tokens) -> None:
    session = await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)
    assert session.user.id == ada.id
    assert session.expires_in == 900
    assert await auth.user_for(session.access_token) == ada
    assert hash_token(session.refresh_token) in tokens.rows
    assert session.refresh_token not in tokens.rows  # only the hash is stored


async def test_the_e_mail_is_matched_whatever_its_case(auth, ada) -> None:
    session = await auth.login(email="  ADA.LOVELACE@example.com ", password=PASSWORD, client=CLIENT)
    assert session.user.id == ada.id


async def test_each_login_begins_a_new_refresh_family(auth, ada, tokens) -> None:
    first = await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)
    second = await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)
    families = {tokens.rows[hash_token(s.refresh_token)].token.family_id for s in (first, second)}
    assert len(families) == 2


async def test_a_wrong_password_and_an_unknown_e_mail_fail_alike_and_both_check_a_hash(auth, ada, hasher) -> None:
    hasher.verified.clear()
    with pytest.raises(InvalidCredentials) as wrong_password:
        await auth.login(email=EMAIL, password="not the password", client=CLIENT)
    assert hasher.verified == ["h:" + PASSWORD]

    hasher.verified.clear()
    with pytest.raises(InvalidCredentials) as unknown_email:
        await auth.login(email="nobody@example.com", password=PASSWORD, client=CLIENT)
    assert len(hasher.verified) == 1  # the decoy: an unknown address takes as long as a wrong password
    assert hasher.verified[0].startswith("h:")
    assert hasher.verified[0] != "h:" + PASSWORD

    assert str(wrong_password.value) == str(unknown_email.value)


async def test_an_unknown_e_mail_fails_even_with_the_decoys_password(auth, hasher) -> None:
    decoy_password = hasher.hashed[0]  # the service hashes its decoy when it is built
    with pytest.raises(InvalidCredentials):
        await auth.login(email="nobody@example.com", password=decoy_password, client=CLIENT)


@pytest.mark.parametrize("email", ["not an e-mail", "ada@example", "ada@example.com\r\nBcc: x@y.com", ""])
async def test_a_malformed_e_mail_at_login_is_invalid_credentials_not_invalid_value(auth, email: str) -> None:
    with pytest.raises(InvalidCredentials):
        await auth.login(email=email, password=PASSWORD, client=CLIENT)


async def test_a_disabled_account_cannot_log_in(auth, ada, users, tokens) -> None:
    users.disable(ada.id)
    with pytest.raises(AccountDisabled):
        await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)
    assert tokens.rows == {}


async def test_a_disabled_account_with_a_wrong_password_reveals_nothing(auth, ada, users) -> None:
    users.disable(ada.id)
    with pytest.raises(InvalidCredentials):
        await auth.login(email=EMAIL, password="not the password", client=CLIENT)


async def test_a_failure_counts_against_the_account_and_the_client(auth, ada, throttle) -> None:
    with pytest.raises(InvalidCredentials):
        await auth.login(email=EMAIL, password="not the password", client=CLIENT)
    assert throttle.failures == {ACCOUNT_KEY: 1, CLIENT_KEY: 1}


async def test_a_failure_for_an_unknown_e_mail_counts_too(auth, throttle) -> None:
    with pytest.raises(InvalidCredentials):
        await auth.login(email="Nobody@Example.com", password=PASSWORD, client=CLIENT)
    assert throttle.failures == {"account:nobody@example.com": 1, CLIENT_KEY: 1}


async def test_once_the_account_is_throttled_the_password_is_not_even_checked(auth, ada, hasher, throttle) -> None:
    for n in range(throttle.limit):
        with pytest.raises(InvalidCredentials):
            await auth.login(email=EMAIL, password="not the password", client=f"198.51.100.{n}")
    hasher.verified.clear()

    with pytest.raises(TooManyAttempts) as error:
        await auth.login(email=EMAIL, password=PASSWORD, client="192.0.2.1")  # even the right one

    assert error.value.retry_after == throttle.retry_after
    assert hasher.verified == []


async def test_once_the_client_is_throttled_other_accounts_are_refused_too(auth, ada, hasher, throttle) -> None:
    for n in range(throttle.limit):
        with pytest.raises(InvalidCredentials):
            await auth.login(email=f"guess{n}@example.com", password=PASSWORD, client=CLIENT)
    hasher.verified.clear()

    with pytest.raises(TooManyAttempts):
        await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)
    assert hasher.verified == []


async def test_a_success_clears_the_account_count_but_not_the_client_count(auth, ada, throttle) -> None:
    for _ in range(throttle.limit - 1):
        with pytest.raises(InvalidCredentials):
            await auth.login(email=EMAIL, password="not the password", client=CLIENT)

    await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)

    assert ACCOUNT_KEY not in throttle.failures
    assert throttle.failures[CLIENT_KEY] == throttle.limit - 1


async def test_a_disabled_account_does_not_clear_its_failures(auth, ada, users, throttle) -> None:
    with pytest.raises(InvalidCredentials):
        await auth.login(email=EMAIL, password="not the password", client=CLIENT)
    users.disable(ada.id)
    with pytest.raises(AccountDisabled):
        await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)
    assert throttle.failures[ACCOUNT_KEY] == 1


async def test_an_outdated_hash_is_upgraded_at_login(auth, ada, users, hasher) -> None:
    hasher.prefix, hasher.outdated = "h2:", True  # the parameters changed since Ada registered
    await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)
    assert users.hashes[ada.id] == "h2:" + PASSWORD


async def test_a_current_hash_is_left_alone_at_login(auth, ada, users, hasher) -> None:
    hasher.outdated = True
    await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)
    assert users.hashes[ada.id] == "h:" + PASSWORD


async def test_a_wrong_password_does_not_upgrade_the_hash(auth, ada, users, hasher) -> None:
    hasher.prefix, hasher.outdated = "h2:", True
    with pytest.raises(InvalidCredentials):
        await auth.login(email=EMAIL, password="not the password", client=CLIENT)
    assert users.hashes[ada.id] == "h:" + PASSWORD


# refresh


@pytest.fixture
async def session(auth, ada):
    return await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)


async def test_refreshing_gives_a_new_pair_in_the_same_family(auth, session, tokens, ada) -> None:
    renewed = await auth.refresh(session.refresh_token)
    assert renewed.user.id == ada.id
    assert renewed.refresh_token != session.refresh_token
    old, new = (tokens.rows[hash_token(s.refresh_token)].token for s in (session, renewed))
    assert old.family_id == new.family_id


async def test_a_refresh_token_cannot_be_used_twice(auth, session) -> None:
    await auth.refresh(session.refresh_token)
    with pytest.raises(InvalidToken):
        await auth.refresh(session.refresh_token)


async def test_reusing_an_old_refresh_token_also_ends_the_new_one(auth, session) -> None:
    renewed = await auth.refresh(session.refresh_token)
    with pytest.raises(InvalidToken):
        await auth.refresh(session.refresh_token)  # a thief, or the victim, replays the old one

    with pytest.raises(InvalidToken):
        await auth.refresh(renewed.refresh_token)


async def test_reuse_ends_only_its_own_family(auth, session) -> None:
    other = await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)  # another device
    await auth.refresh(session.refresh_token)
    with pytest.raises(InvalidToken):
        await auth.refresh(session.refresh_token)

    assert (await auth.refresh(other.refresh_token)).user == other.user


async def test_a_refresh_token_works_until_it_expires(auth, session, clock) -> None:
    clock.advance(timedelta(days=30) - timedelta(seconds=1))
    await auth.refresh(session.refresh_token)


async def test_an_expired_refresh_token_is_invalid(auth, session, clock, tokens) -> None:
    clock.advance(timedelta(days=30))
    with pytest.raises(InvalidToken):
        await auth.refresh(session.refresh_token)
    assert tokens.revoked_families() == set()


@pytest.mark.parametrize("token", ["", "made-up", "x" * 43])
async def test_an_unknown_refresh_token_is_invalid(auth, session, token: str) -> None:
    with pytest.raises(InvalidToken):
        await auth.refresh(token)


async def test_a_disabled_users_refresh_fails_and_ends_the_family(auth, session, users, ada, tokens) -> None:
    users.disable(ada.id)
    family = tokens.rows[hash_token(session.refresh_token)].token.family_id
    with pytest.raises(InvalidToken):
        await auth.refresh(session.refresh_token)
    assert tokens.revoked_families() == {family}


async def test_a_deleted_users_refresh_fails_and_ends_the_family(auth, session, users, ada, tokens) -> None:
    users.delete(ada.id)
    with pytest.raises(InvalidToken):
        await auth.refresh(session.refresh_token)
    assert len(tokens.revoked_families()) == 1


async def test_the_refreshed_session_has_a_fresh_expiry(auth, session, clock) -> None:
    clock.advance(timedelta(days=20))
    renewed = await auth.refresh(session.refresh_token)
    clock.advance(timedelta(days=20))  # past the first token's expiry, within the second's
    await auth.refresh(renewed.refresh_token)


# logout


async def test_logging_out_ends_the_whole_family(auth, session) -> None:
    renewed = await auth.refresh(session.refresh_token)
    await auth.logout(renewed.refresh_token)
    with pytest.raises(InvalidToken):
        await auth.refresh(renewed.refresh_token)


async def test_logging_out_with_an_older_token_of_the_family_ends_it_too(auth, session) -> None:
    renewed = await auth.refresh(session.refresh_token)
    await auth.logout(session.refresh_token)
    with pytest.raises(InvalidToken):
        await auth.refresh(renewed.refresh_token)


async def test_logging_out_leaves_other_sessions_alone(auth, session) -> None:
    other = await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)
    await auth.logout(session.refresh_token)
    await auth.refresh(other.refresh_token)


async def test_logging_out_with_an_unknown_token_is_ignored(auth, session, tokens) -> None:
    await auth.logout("made-up")
    assert tokens.revoked_families() == set()
    await auth.refresh(session.refresh_token)


# user_for


async def test_a_valid_access_token_names_its_user(auth, session, ada) -> None:
    assert await auth.user_for(session.access_token) == ada


async def test_an_access_token_of_a_disabled_user_is_refused(auth, session, users, ada) -> None:
    users.disable(ada.id)
    with pytest.raises(AccountDisabled):
        await auth.user_for(session.access_token)


async def test_an_access_token_of_a_deleted_user_is_invalid(auth, session, users, ada) -> None:
    users.delete(ada.id)
    with pytest.raises(InvalidToken):
        await auth.user_for(session.access_token)


async def test_an_access_token_is_read_against_the_services_clock(auth, session, clock) -> None:
    clock.advance(timedelta(seconds=900))
    with pytest.raises(InvalidToken):
        await auth.user_for(session.access_token)


async def test_a_garbage_access_token_is_invalid(auth, session) -> None:
    with pytest.raises(InvalidToken):
        await auth.user_for("not-a-token")


# an access token lives only as long as its session


async def test_an_access_token_is_refused_once_its_session_is_logged_out(auth, session) -> None:
    await auth.logout(session.refresh_token)
    with pytest.raises(InvalidToken, match="session has ended"):
        await auth.user_for(session.access_token)


async def test_a_refreshed_access_token_belongs_to_the_same_session(auth, session) -> None:
    renewed = await auth.refresh(session.refresh_token)
    await auth.logout(renewed.refresh_token)
    for token in (session.access_token, renewed.access_token):
        with pytest.raises(InvalidToken):
            await auth.user_for(token)


async def test_a_reused_refresh_token_ends_the_access_tokens_of_its_session(auth, session) -> None:
    renewed = await auth.refresh(session.refresh_token)
    with pytest.raises(InvalidToken):
        await auth.refresh(session.refresh_token)
    with pytest.raises(InvalidToken):
        await auth.user_for(renewed.access_token)


async def test_revoking_every_session_of_a_user_ends_all_their_access_tokens(auth, session, tokens, ada,
                                                                             clock) -> None:
    other = await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)
    await tokens.revoke_user(ada.id, now=clock.now)
    for token in (session.access_token, other.access_token):
        with pytest.raises(InvalidToken):
            await auth.user_for(token)


async def test_ending_one_session_leaves_the_others_access_tokens_alone(auth, session, ada) -> None:
    other = await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)
    await auth.logout(session.refresh_token)
    assert await auth.user_for(other.access_token) == ada


class _SignedOutDuringRefresh(FakeRefreshTokens):
    """Every token stored after the first (a refresh's) finds its session signed out after the refresh took the
    old token and before it stored the new one."""

    async def add(self, token: RefreshToken) -> None:
        if self.rows:
            await self.revoke_family(token.family_id, now=token.created_at)
        await super().add(token)


async def test_a_refresh_racing_a_sign_out_does_not_carry_the_ended_session_on(users, hasher, throttle,
                                                                               clock) -> None:
    tokens = _SignedOutDuringRefresh()
    auth = AuthService(users=users, refresh_tokens=tokens, ended_sessions=tokens, hasher=hasher,
                       access=FakeAccessTokens(), throttle=throttle, clock=clock)
    await auth.register(email=EMAIL, password=PASSWORD)
    session = await auth.login(email=EMAIL, password=PASSWORD, client=CLIENT)
    with pytest.raises(InvalidToken, match="session has ended"):
        await auth.refresh(session.refresh_token)
    assert all(row.revoked_at is not None for row in tokens.rows.values()), "the token stored meanwhile went too"
