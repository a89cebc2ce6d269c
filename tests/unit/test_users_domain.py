from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shop.domain.errors import InvalidValue
from shop.domain.users import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    Role,
    User,
    UserStatus,
    check_password,
    normalize_email,
)

GOOD_PASSWORD = "correct horse battery"


def _user(*roles: Role, status: UserStatus = UserStatus.ACTIVE) -> User:
    return User(id="u1", email="ada@example.com", email_key="ada@example.com", name="Ada",
                roles=frozenset(roles), status=status)


def _address_of_length(total: int) -> str:
    """A valid address of exactly `total` characters: a 64-character local part and 63-character labels."""
    local = "a" * 64
    domain_length = total - len(local) - 1
    labels = []
    while domain_length > 63:
        labels.append("b" * 63)
        domain_length -= 64  # the label and its dot
    labels.append("c" * domain_length)
    address = f"{local}@{'.'.join(labels)}"
    assert len(address) == total
    return address


# normalize_email


def test_the_key_is_case_folded_while_the_address_keeps_the_local_part_as_written() -> None:
    address, key = normalize_email("Ada.Lovelace@Example.COM")
    assert address == "Ada.Lovelace@example.com"
    assert key == "ada.lovelace@example.com"


def test_the_same_address_in_any_case_has_the_same_key() -> None:
    assert normalize_email("ADA@EXAMPLE.COM")[1] == normalize_email("ada@example.com")[1]


def test_surrounding_whitespace_is_trimmed() -> None:
    assert normalize_email("  ada@example.com\t\n") == ("ada@example.com", "ada@example.com")


@pytest.mark.parametrize("raw", [
    "ada@example.com\r\nBcc: eve@evil.example",
    "ada@example.com\nBcc: eve@evil.example",
    "ada\r@example.com",
    "ada@exa\nmple.com",
], ids=["crlf-header", "lf-header", "cr-in-local", "lf-in-domain"])
def test_line_breaks_inside_an_address_are_refused_so_no_header_can_be_injected(raw: str) -> None:
    with pytest.raises(InvalidValue) as error:
        normalize_email(raw)
    assert error.value.field == "email"


@pytest.mark.parametrize("raw", [
    "ada lovelace@example.com",
    "ada@exam ple.com",
    "ada@example",
    "ada@-example.com",
    "ada@mail.-example.com",
    "ada@example-.com",
    "ada@example..com",
    "@example.com",
    "ada@",
    "ada",
    "",
    "ada@@example.com",
    "<ada@example.com>",
    "ada,eve@example.com",
    "a" * 65 + "@example.com",
], ids=["space-in-local", "space-in-domain", "no-dot-in-domain", "leading-hyphen", "leading-hyphen-inner-label",
        "trailing-hyphen", "empty-label", "no-local-part", "no-domain", "no-at", "empty", "two-ats",
        "angle-brackets", "comma", "local-part-too-long"])
def test_malformed_addresses_are_refused(raw: str) -> None:
    with pytest.raises(InvalidValue) as error:
        normalize_email(raw)
    assert error.value.field == "email"


def test_an_address_of_320_characters_is_accepted() -> None:
    address = _address_of_length(320)
    assert normalize_email(address)[0] == address


def test_an_address_longer_than_320_characters_is_refused() -> None:
    with pytest.raises(InvalidValue):
        normalize_email(_address_of_length(321))


@given(st.emails())
def test_normalizing_is_idempotent_for_any_valid_address(raw: str) -> None:
    try:
        address, key = normalize_email(raw)
    except InvalidValue:
        return  # hypothesis may produce addresses our stricter rules refuse; only accepted ones matter here
    assert normalize_email(address) == (address, key)
    assert normalize_email(key)[1] == key


# check_password


def test_a_long_varied_password_is_accepted() -> None:
    check_password(GOOD_PASSWORD, email="ada@example.com", name="Ada Lovelace")


def test_a_password_shorter_than_the_minimum_is_refused() -> None:
    with pytest.raises(InvalidValue) as error:
        check_password("Xk3$pq9!z"[: MIN_PASSWORD_LENGTH - 1])
    assert error.value.field == "password"
    assert str(MIN_PASSWORD_LENGTH) in error.value.message


def test_a_password_of_exactly_the_minimum_length_is_accepted() -> None:
    check_password("Xk3$pq9!zW"[:MIN_PASSWORD_LENGTH])


def test_a_password_longer_than_the_maximum_is_refused() -> None:
    with pytest.raises(InvalidValue) as error:
        check_password("abcd" * (MAX_PASSWORD_LENGTH // 4) + "e")
    assert error.value.field == "password"
    assert str(MAX_PASSWORD_LENGTH) in error.value.message


def test_a_password_of_exactly_the_maximum_length_is_accepted() -> None:
    check_password("abcd" * (MAX_PASSWORD_LENGTH // 4))


@pytest.mark.parametrize("password", ["qwertyuiop", "QwertyUiop", "password123", "administrator", "1q2w3e4r5t"])
def test_a_common_password_is_refused_whatever_its_case(password: str) -> None:
    with pytest.raises(InvalidValue) as error:
        check_password(password)
    assert error.value.field == "password"
    assert "common" in error.value.message


@pytest.mark.parametrize("password", ["aaaaaaaaaa", "ababababab", "abcabcabca", "AbCaBcAbCa"])
def test_a_password_of_fewer_than_four_distinct_characters_is_refused(password: str) -> None:
    with pytest.raises(InvalidValue) as error:
        check_password(password)
    assert error.value.field == "password"


def test_a_password_of_four_distinct_characters_is_accepted() -> None:
    check_password("abcdabcdab")


@pytest.mark.parametrize("password", ["ada.lovelace@example.com", "ADA.LOVELACE@EXAMPLE.COM"])
def test_the_e_mail_address_itself_is_refused_as_a_password(password: str) -> None:
    with pytest.raises(InvalidValue) as error:
        check_password(password, email="ada.lovelace@example.com")
    assert error.value.field == "password"
    assert "e-mail" in error.value.message


def test_the_local_part_of_the_e_mail_is_refused_as_a_password() -> None:
    with pytest.raises(InvalidValue):
        check_password("Ada.Lovelace", email="ada.lovelace@example.com")


@pytest.mark.parametrize("password", ["adalovelace", "AdaLovelace"])
def test_the_name_without_its_spaces_is_refused_as_a_password(password: str) -> None:
    with pytest.raises(InvalidValue) as error:
        check_password(password, name="Ada Lovelace")
    assert error.value.field == "password"


def test_a_one_word_name_is_refused_as_a_password() -> None:
    with pytest.raises(InvalidValue):
        check_password("Lovelace1815", name="lovelace1815")


def test_the_name_exactly_as_written_is_refused_as_a_password() -> None:
    with pytest.raises(InvalidValue):
        check_password("Ada Lovelace", name="Ada Lovelace")


def test_without_an_e_mail_or_name_nothing_personal_is_refused() -> None:
    check_password("something-else", email="", name="")


# User


def test_a_customer_has_only_the_customer_role() -> None:
    user = _user(Role.CUSTOMER)
    assert user.has_role(Role.CUSTOMER)
    assert not user.has_role(Role.STAFF)
    assert not user.has_role(Role.ADMIN)
    assert not user.is_staff


def test_staff_may_do_what_customers_may_but_not_what_admins_may() -> None:
    user = _user(Role.STAFF)
    assert user.has_role(Role.CUSTOMER)
    assert user.has_role(Role.STAFF)
    assert not user.has_role(Role.ADMIN)
    assert user.is_staff


def test_an_admin_has_every_role_even_when_only_admin_is_listed() -> None:
    user = _user(Role.ADMIN)
    assert all(user.has_role(role) for role in Role)
    assert user.is_staff


def test_a_new_user_is_an_active_customer() -> None:
    user = User(id="u1", email="ada@example.com", email_key="ada@example.com", name="Ada")
    assert user.roles == frozenset({Role.CUSTOMER})
    assert user.is_active
    assert not user.is_staff


def test_a_disabled_user_is_not_active() -> None:
    assert not _user(Role.ADMIN, status=UserStatus.DISABLED).is_active
