from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from shop.domain.sessions import AccessClaims
from shop.domain.users import InvalidToken, Role, TooManyAttempts, User
from shop.infrastructure.security.passwords import Argon2Passwords
from shop.infrastructure.security.throttle import AttemptThrottle
from shop.infrastructure.security.tokens import JwtAccessTokens

SECRET = "s3cret-" + "x" * 57  # 64 bytes, enough for the HS512 forgery too
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ADA = User(id="user-1", email="ada@example.com", email_key="ada@example.com", name="Ada",
           roles=frozenset({Role.CUSTOMER, Role.STAFF}))
SID = "family-1"
ADAS = AccessClaims(user_id=ADA.id, session_id=SID)


def _b64(data: dict[str, object] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**overrides: object) -> dict[str, object]:
    iat = int(NOW.timestamp())
    claims: dict[str, object] = {"sub": ADA.id, "sid": SID, "iss": "shop", "typ": "access", "iat": iat,
                                 "exp": iat + 900, "jti": "j1", "roles": ["admin"]}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


# Argon2Passwords


@pytest.fixture(scope="module")
def passwords() -> Argon2Passwords:
    return Argon2Passwords(memory_kib=64, passes=1)  # small: these tests are not about the parameters


def test_the_right_password_verifies(passwords) -> None:
    assert passwords.verify(passwords.hash("analytical engine"), "analytical engine")


def test_a_wrong_password_does_not_verify(passwords) -> None:
    assert not passwords.verify(passwords.hash("analytical engine"), "difference engine")


def test_the_same_password_hashes_differently_each_time(passwords) -> None:
    assert passwords.hash("analytical engine") != passwords.hash("analytical engine")


def test_a_hash_is_argon2id(passwords) -> None:
    assert passwords.hash("analytical engine").startswith("$argon2id$")


@pytest.mark.parametrize("garbage", [
    "",
    "not a hash",
    "$argon2id$v=19$m=bogus",
    "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$AAAAAAAAAA",
    "$2b$12$abcdefghijklmnopqrstuuOd2n4YbH6m/z3nqYzN8PbhGa2cCz1Ri",  # bcrypt
], ids=["empty", "text", "bad-parameters", "bad-digest", "bcrypt"])
def test_a_garbage_hash_does_not_verify_instead_of_raising(passwords, garbage: str) -> None:
    assert passwords.verify(garbage, "analytical engine") is False


def test_a_truncated_hash_does_not_verify(passwords) -> None:
    assert passwords.verify(passwords.hash("analytical engine")[:-8], "analytical engine") is False


def test_a_hash_with_non_ascii_characters_does_not_verify_instead_of_raising(passwords) -> None:
    assert passwords.verify("$argon2id$v=19$m=64,t=1,p=1$sälz$AAAA", "analytical engine") is False


def test_a_hash_made_with_weaker_parameters_needs_a_rehash() -> None:
    weak = Argon2Passwords(memory_kib=8 * 1024, passes=1).hash("analytical engine")
    assert Argon2Passwords().needs_rehash(weak)


def test_a_hash_made_with_the_current_parameters_needs_no_rehash(passwords) -> None:
    assert not passwords.needs_rehash(passwords.hash("analytical engine"))


def test_a_hash_made_with_weaker_parameters_still_verifies() -> None:
    weak = Argon2Passwords(memory_kib=64, passes=1).hash("analytical engine")
    assert Argon2Passwords(memory_kib=128, passes=2).verify(weak, "analytical engine")


# JwtAccessTokens


@pytest.fixture
def access() -> JwtAccessTokens:
    return JwtAccessTokens(SECRET, ttl_seconds=900)


def test_an_issued_token_reads_back_as_its_user_and_session(access) -> None:
    assert access.read(access.issue(ADA, session_id=SID, now=NOW), now=NOW) == ADAS


def test_an_issued_token_carries_the_users_roles_and_is_an_access_token(access) -> None:
    claims = jwt.decode(access.issue(ADA, session_id=SID, now=NOW), SECRET, algorithms=["HS256"],
                        options={"verify_exp": False})
    assert claims["typ"] == "access" and claims["sid"] == SID
    assert claims["roles"] == ["customer", "staff"]
    assert claims["exp"] - claims["iat"] == 900


def test_a_token_is_valid_until_the_last_second_before_it_expires(access) -> None:
    token = access.issue(ADA, session_id=SID, now=NOW)
    assert access.read(token, now=NOW + timedelta(seconds=899)) == ADAS


def test_a_token_past_its_expiry_by_the_passed_clock_is_invalid(access) -> None:
    token = access.issue(ADA, session_id=SID, now=NOW)
    with pytest.raises(InvalidToken):
        access.read(token, now=NOW + timedelta(seconds=900))


def test_a_token_signed_with_another_secret_is_invalid(access) -> None:
    other = JwtAccessTokens("another-secret-" + "y" * 32)
    with pytest.raises(InvalidToken):
        access.read(other.issue(ADA, session_id=SID, now=NOW), now=NOW)


def test_a_token_with_a_tampered_payload_is_invalid(access) -> None:
    header, _, signature = access.issue(ADA, session_id=SID, now=NOW).split(".")
    forged = f"{header}.{_b64(_claims(sub='admin-1'))}.{signature}"
    with pytest.raises(InvalidToken):
        access.read(forged, now=NOW)


def test_an_unsigned_alg_none_token_is_invalid(access) -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    with pytest.raises(InvalidToken):
        access.read(token, now=NOW)


def test_an_hs512_token_with_the_right_secret_is_invalid(access) -> None:
    token = jwt.encode(_claims(), SECRET, algorithm="HS512")
    with pytest.raises(InvalidToken):
        access.read(token, now=NOW)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256"])
def test_a_public_key_style_header_signed_with_the_secret_is_invalid(access, alg: str) -> None:
    signing_input = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(_claims())}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken):
        access.read(f"{signing_input}.{_b64(signature)}", now=NOW)


@pytest.mark.parametrize("typ", ["refresh", "", None], ids=["refresh", "empty", "missing"])
def test_a_token_that_is_not_an_access_token_is_invalid(access, typ: str | None) -> None:
    token = jwt.encode(_claims(typ=typ), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        access.read(token, now=NOW)


@pytest.mark.parametrize("claim", ["sub", "sid", "exp", "iat", "iss"])
def test_a_token_missing_a_required_claim_is_invalid(access, claim: str) -> None:
    claims = _claims()
    del claims[claim]
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        access.read(token, now=NOW)


def test_a_token_from_another_issuer_is_invalid(access) -> None:
    token = jwt.encode(_claims(iss="someone-else"), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        access.read(token, now=NOW)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.b", "....."])
def test_a_malformed_token_is_invalid(access, token: str) -> None:
    with pytest.raises(InvalidToken):
        access.read(token, now=NOW)


def test_a_token_is_judged_by_the_passed_clock_not_the_os_clock(access) -> None:
    ahead = datetime.now(UTC) + timedelta(seconds=5)
    assert access.read(access.issue(ADA, session_id=SID, now=ahead), now=ahead) == ADAS


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_a_secret_shorter_than_32_bytes_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        JwtAccessTokens(secret)


def test_a_secret_of_32_bytes_is_accepted_counting_bytes_not_characters() -> None:
    JwtAccessTokens("é" * 16)  # 16 characters, 32 bytes in UTF-8


# AttemptThrottle (in memory)


@pytest.fixture
def throttle() -> AttemptThrottle:
    return AttemptThrottle({"account": "3/15 minutes", "client": "5/15 minutes"})


async def test_failures_up_to_the_limit_are_allowed(throttle) -> None:
    for _ in range(2):
        await throttle.check(["account:ada@example.com"])
        await throttle.failed(["account:ada@example.com"])
    await throttle.check(["account:ada@example.com"])


async def test_after_the_limit_further_attempts_are_refused_with_a_retry_after(throttle) -> None:
    for _ in range(3):
        await throttle.failed(["account:ada@example.com"])
    with pytest.raises(TooManyAttempts) as error:
        await throttle.check(["account:ada@example.com"])
    assert 0 < error.value.retry_after <= 15 * 60


async def test_each_prefix_has_its_own_limit(throttle) -> None:
    for _ in range(4):
        await throttle.failed(["client:203.0.113.7"])
    await throttle.check(["client:203.0.113.7"])  # the client limit is 5
    await throttle.failed(["client:203.0.113.7"])
    with pytest.raises(TooManyAttempts):
        await throttle.check(["client:203.0.113.7"])


async def test_one_throttled_key_refuses_the_whole_check(throttle) -> None:
    for _ in range(3):
        await throttle.failed(["account:ada@example.com"])
    with pytest.raises(TooManyAttempts):
        await throttle.check(["account:ada@example.com", "client:203.0.113.7"])


async def test_clearing_a_key_resets_its_count(throttle) -> None:
    for _ in range(3):
        await throttle.failed(["account:ada@example.com"])
    await throttle.clear(["account:ada@example.com"])
    await throttle.check(["account:ada@example.com"])
    for _ in range(2):
        await throttle.failed(["account:ada@example.com"])
    await throttle.check(["account:ada@example.com"])


async def test_clearing_one_key_leaves_the_others_counted(throttle) -> None:
    for _ in range(3):
        await throttle.failed(["account:ada@example.com", "account:bob@example.com"])
    await throttle.clear(["account:ada@example.com"])
    with pytest.raises(TooManyAttempts):
        await throttle.check(["account:bob@example.com"])


async def test_separate_keys_are_counted_separately(throttle) -> None:
    for _ in range(3):
        await throttle.failed(["account:ada@example.com"])
    await throttle.check(["account:bob@example.com"])
    await throttle.check(["client:203.0.113.7"])


async def test_an_ipv6_client_key_uses_the_client_limit(throttle) -> None:
    for _ in range(4):
        await throttle.failed(["client:2001:db8::1"])
    await throttle.check(["client:2001:db8::1"])
