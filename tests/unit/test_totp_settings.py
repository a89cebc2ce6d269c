"""SHOP_TOTP_KEYS: Fernet keys only, never echoed; an https shop does not seal 2FA secrets with the key made in
var/; unset on a laptop, a key derived from the secret key seals and keeps opening after SHOP_TOTP_KEYS is set."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from shop.bootstrap import build_secret_box
from shop.config import Settings
from shop.infrastructure.security.secret_box import PREFIX, new_key
from shop.services.ports import SecretUnreadable

A, B = new_key(), new_key()


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(_env_file=None, var_dir=tmp_path / "var", **values)  # type: ignore[call-arg]


def _error(tmp_path: Path, **values: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as raised:
        _settings(tmp_path, **values)
    errors = [e for e in raised.value.errors() if e["loc"] == ("totp_keys",)]
    assert len(errors) == 1, raised.value.errors()
    keys = str(values.get("totp_keys", "")).strip()
    assert not keys or all(k.strip() not in str(raised.value) for k in keys.split(",") if k.strip()), \
        "a rejected key is named by its place, never shown"
    return dict(errors[0])


@pytest.mark.parametrize(("keys", "bad"), [
    ("hunter2-not-a-key", 1),
    (f"{A},{A[:-4]}", 2),  # 29 bytes: cut off when pasted
    (f"{A}, ,{B},{base64.urlsafe_b64encode(bytes(16)).decode()}", 3),  # blanks skipped; 16 bytes: too short
])
def test_a_key_that_is_not_a_fernet_key_is_refused_by_its_place_in_the_list(tmp_path: Path, keys: str,
                                                                           bad: int) -> None:
    error = _error(tmp_path, totp_keys=keys)
    assert error["type"] == "totp_key_invalid" and f"key {bad} " in error["msg"] and "shop totp new-key" in error["msg"]


def test_an_https_shop_needs_its_own_keys_or_its_own_secret_key(tmp_path: Path) -> None:
    live = {"public_url": "https://shop.example", "allow_test_payments": True}
    error = _error(tmp_path, **live)
    assert error["type"] == "totp_keys_on_https"
    assert "SHOP_TOTP_KEYS" in error["msg"] and "SHOP_SECRET_KEY" in error["msg"]
    assert _error(tmp_path, **live, totp_keys=" ")["type"] == "totp_keys_on_https", "blank is unset"
    assert _settings(tmp_path, **live, totp_keys=f"{A},{B}").totp_key_list() == [A, B]
    assert _settings(tmp_path, **live, secret_key="s" * 48).totp_key_list() == []


def test_a_laptop_needs_nothing_set_and_seals_with_a_key_derived_from_the_secret_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert settings.totp_key_list() == [] and settings.public_view()["totp_keys"] == "(derived from secret_key)"
    sealed = build_secret_box(settings).seal("JBSWY3DPEHPK3PXP")
    assert build_secret_box(_settings(tmp_path)).open(sealed) == "JBSWY3DPEHPK3PXP", "the same key after a restart"
    # setting SHOP_TOTP_KEYS later: the new key seals, the derived one still opens what it sealed
    keyed = build_secret_box(_settings(tmp_path, totp_keys=A))
    assert keyed.open(sealed) == "JBSWY3DPEHPK3PXP"
    assert Fernet(A).decrypt(keyed.reseal(sealed).removeprefix(PREFIX)) == b"JBSWY3DPEHPK3PXP"
    other_secret = build_secret_box(_settings(tmp_path, secret_key="another-secret-key-" + "x" * 30))
    with pytest.raises(SecretUnreadable):
        other_secret.open(sealed)


def test_the_keys_are_masked_in_the_printed_settings(tmp_path: Path) -> None:
    view = _settings(tmp_path, totp_keys=f"{A},{B}").public_view()
    assert view["totp_keys"] == "***" and A not in str(view) and B not in str(view)
