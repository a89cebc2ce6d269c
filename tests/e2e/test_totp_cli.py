"""`shop totp`: a new key, re-sealing every 2FA secret under the first key, and SHOP_TOTP_KEYS mistakes in one line
that never shows a key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken

from shop.infrastructure.security.secret_box import PREFIX, FernetSecretBox
from tests.e2e.test_cli import _one_line_error, shop

PLAIN = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _secret(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("SELECT totp_secret FROM users").fetchone()[0])


def _store(db: Path, value: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE users SET totp_secret = ?", (value,))


def test_new_key_prints_a_fernet_key_each_time_different(tmp_path: Path) -> None:
    first, second = shop("totp", "new-key", cwd=tmp_path), shop("totp", "new-key", cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr
    assert first.stdout.strip() != second.stdout.strip()
    Fernet(first.stdout.strip())  # raises unless it is one


def test_rekey_seals_plain_and_old_secrets_under_the_first_key(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    env = {"SHOP_MAIN_DB_URL": f"sqlite:///{db}", "SHOP_ADMIN_PASSWORD": "a-strong-admin-secret"}
    assert shop("migrate", env=env, cwd=tmp_path).returncode == 0
    assert shop("createadmin", "--email", "boss@example.com", env=env, cwd=tmp_path).returncode == 0
    _store(db, PLAIN)  # as 2FA secrets were stored before they were sealed

    sealed = shop("totp", "rekey", env={**env, "SHOP_TOTP_KEYS": old}, cwd=tmp_path)
    assert sealed.returncode == 0, sealed.stderr
    assert "1 two-factor secrets sealed under the first key (1 of them were kept in plain text)" in sealed.stdout
    assert Fernet(old).decrypt(_secret(db).removeprefix(PREFIX)).decode() == PLAIN

    rotated = shop("totp", "rekey", env={**env, "SHOP_TOTP_KEYS": f"{new},{old}"}, cwd=tmp_path)
    assert rotated.returncode == 0 and "(0 of them were kept in plain text)" in rotated.stdout, rotated.stderr
    assert FernetSecretBox([new]).open(_secret(db)) == PLAIN
    with pytest.raises(InvalidToken):
        Fernet(old).decrypt(_secret(db).removeprefix(PREFIX))
    assert old not in rotated.stdout + rotated.stderr and new not in rotated.stdout + rotated.stderr


def test_rekey_fails_naming_the_user_when_no_key_opens_a_secret(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    env = {"SHOP_MAIN_DB_URL": f"sqlite:///{db}", "SHOP_ADMIN_PASSWORD": "a-strong-admin-secret",
           "SHOP_TOTP_KEYS": Fernet.generate_key().decode()}
    assert shop("migrate", env=env, cwd=tmp_path).returncode == 0
    made = shop("createadmin", "--email", "boss@example.com", env=env, cwd=tmp_path)
    user_id = made.stdout.rsplit("(id ", 1)[1].split(")")[0]
    lost = FernetSecretBox([Fernet.generate_key()]).seal(PLAIN)
    _store(db, lost)
    result = shop("totp", "rekey", env=env, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "1 secrets open with none of the keys" in result.stderr and user_id in result.stderr
    assert PLAIN not in result.stderr + result.stdout and _secret(db) == lost


def test_a_bad_key_is_one_line_naming_its_place_and_not_its_value(tmp_path: Path) -> None:
    good = Fernet.generate_key().decode()
    line = _one_line_error(shop("config", env={"SHOP_TOTP_KEYS": f"{good},hunter2hunter2"}, cwd=tmp_path))
    assert line.startswith("error: SHOP_TOTP_KEYS: key 2 is not a Fernet key"), line
    assert "hunter2" not in line and good not in line


def test_rekey_refuses_an_unmigrated_users_store(tmp_path: Path) -> None:
    line = _one_line_error(shop("totp", "rekey", env={"SHOP_MAIN_DB_URL": f"sqlite:///{tmp_path}/x.db"},
                                cwd=tmp_path))
    assert "shop migrate" in line
