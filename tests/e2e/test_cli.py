"""The `shop` command: clear one-line errors, masked secrets, idempotent migrations, seeding."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases import DatabaseFactory

SHOP = [sys.executable, "-m", "shop"]


def shop(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    return subprocess.run([*SHOP, *args], env={**clean, **(env or {})}, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_config_prints_effective_settings_with_passwords_masked(tmp_path: Path) -> None:
    result = shop("config", "--json", env={
        "SHOP_MAIN_DB_URL": "postgresql://shop:hunter2@db.example:5432/shop",
        "SHOP_POSTS_DB_URL": "mysql://reader:s3cret@mariadb:3306/posts",
        "SHOP_SECRET_KEY": "very-secret-key"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout and "s3cret" not in result.stdout and "very-secret" not in result.stdout
    assert "postgresql://shop:***@db.example:5432/shop" in result.stdout
    assert '"users_db_url": "postgresql://shop:***@db.example:5432/shop"' in result.stdout, "users follows main"
    assert "mysql://reader:***@mariadb:3306/posts" in result.stdout


def test_the_default_store_is_an_sqlite_file_under_var(tmp_path: Path) -> None:
    result = shop("config", "--json", cwd=tmp_path)
    assert '"main_db_url": "sqlite+aiosqlite:///var/shop.db"' in result.stdout
    assert '"posts_db_url": "sqlite+aiosqlite:///var/shop.db"' in result.stdout


@pytest.mark.parametrize(("url", "words"), [
    ("not a url", ["main store", "not a database URL"]),
    ("oracle://scott@db/orcl", ["main store", "unsupported database"]),
    ("postgresql://", ["main store", "no host"]),
])
def test_a_malformed_url_is_one_clear_line(tmp_path: Path, url: str, words: list[str]) -> None:
    line = _one_line_error(shop("migrate", env={"SHOP_MAIN_DB_URL": url}, cwd=tmp_path))
    assert all(w in line for w in words), line


@pytest.mark.parametrize(("store", "url", "host"), [
    ("posts", "postgresql://postgres@127.0.0.1:1/shop", "127.0.0.1:1"),
    ("users", "mysql://root@127.0.0.1:2/shop", "127.0.0.1:2"),
])
def test_an_unreachable_database_names_the_store_and_host(tmp_path: Path, store: str, url: str, host: str) -> None:
    env = {f"SHOP_{store.upper()}_DB_URL": url, "SHOP_MAIN_DB_URL": f"sqlite:///{tmp_path}/main.db"}
    line = _one_line_error(shop("migrate", env=env, cwd=tmp_path))
    assert f"{store} store" in line and host in line, line


def test_a_bad_setting_is_one_clear_line(tmp_path: Path) -> None:
    line = _one_line_error(shop("config", env={"SHOP_PORT": "eighty"}, cwd=tmp_path))
    assert "SHOP_PORT" in line


async def test_migrate_and_seed_the_demo_then_leave_it_alone(backend: str, db_factory: DatabaseFactory,
                                                             tmp_path: Path) -> None:
    env = {"SHOP_MAIN_DB_URL": await db_factory.url(backend, "cli")}
    first, again = shop("migrate", env=env, cwd=tmp_path), shop("migrate", env=env, cwd=tmp_path)
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert "empty →" in first.stdout and again.stdout.count("up to date") == 3
    seeded = shop("seed", "--demo", env=env, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    assert "added 20 categories and 240 products" in seeded.stdout
    twice = shop("seed", "--demo", env=env, cwd=tmp_path)
    assert twice.returncode == 0 and "already has 240 products" in twice.stdout
    more = shop("seed", "--products", "500", env=env, cwd=tmp_path)
    assert more.returncode == 0 and "added 0 categories and 500 products" in more.stdout


def test_seed_refuses_an_unmigrated_store(tmp_path: Path) -> None:
    line = _one_line_error(shop("seed", "--demo", env={"SHOP_MAIN_DB_URL": f"sqlite:///{tmp_path}/x.db"},
                                cwd=tmp_path))
    assert "shop migrate" in line


def test_seed_needs_to_be_told_what(tmp_path: Path) -> None:
    line = _one_line_error(shop("seed", cwd=tmp_path))
    assert "--demo" in line


def test_createadmin_makes_an_admin_and_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    env = {"SHOP_MAIN_DB_URL": f"sqlite:///{tmp_path}/shop.db", "SHOP_ADMIN_PASSWORD": "a-strong-admin-secret"}
    assert shop("migrate", env=env, cwd=tmp_path).returncode == 0
    made = shop("createadmin", "--email", "Boss@Example.com", env=env, cwd=tmp_path)
    assert made.returncode == 0 and "admin Boss@example.com created" in made.stdout
    assert "a-strong-admin-secret" not in made.stdout + made.stderr
    assert "already exists" in _one_line_error(shop("createadmin", "--email", "boss@example.com", env=env,
                                                    cwd=tmp_path))
    weak = {**env, "SHOP_ADMIN_PASSWORD": "short"}
    assert "password" in _one_line_error(shop("createadmin", "--email", "x@example.com", env=weak, cwd=tmp_path))
    assert "e-mail" in _one_line_error(shop("createadmin", "--email", "nope", env=env, cwd=tmp_path))


async def _queue_one_email(url: str) -> None:
    from shop.bootstrap import build_databases
    from shop.domain.messages import Email
    from shop.infrastructure.db.main.outbox import SqlOutbox
    from shop.services.email_delivery import queue_email
    from tests.conftest import make_settings

    databases = build_databases(make_settings(url))
    try:
        async with SqlOutbox(databases.store("main")).transaction() as outbox:
            await queue_email(outbox, Email(to=("ada@example.com",), subject="Hello", text="Hi", html="<p>Hi</p>"))
    finally:
        await databases.dispose()


def test_worker_delivers_queued_mail_to_files_and_stops_on_sigterm(tmp_path: Path) -> None:
    import asyncio
    import signal
    import time

    env = {"SHOP_MAIN_DB_URL": f"sqlite:///{tmp_path}/shop.db"}
    assert shop("migrate", env=env, cwd=tmp_path).returncode == 0
    asyncio.run(_queue_one_email(f"sqlite+aiosqlite:///{tmp_path}/shop.db"))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    worker = subprocess.Popen([*SHOP, "worker", "--idle", "0.1"], env={**clean, **env}, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not list((tmp_path / "var" / "mail").glob("*.eml")):
            assert worker.poll() is None and time.monotonic() < deadline, worker.stderr.read() if worker.stderr else ""
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        out_text, err_text = worker.communicate(timeout=20)
    assert worker.returncode == 0, err_text
    assert "stopped after 1 outbox jobs" in out_text and "Traceback" not in err_text
    message = next((tmp_path / "var" / "mail").glob("*.eml")).read_text()
    assert "Subject: Hello" in message and "ada@example.com" in message


def test_assets_build_writes_hashed_files_and_a_manifest(tmp_path: Path) -> None:
    import json

    result = shop("assets", "build", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    css = manifest["css/shop.css"]
    assert (tmp_path / "out" / css["file"]).is_file() and css["integrity"].startswith("sha384-")
    bad = shop("assets", "build", env={"SHOP_ASSETS_CDN": "jsdelivr"}, cwd=tmp_path)
    assert bad.returncode == 2 and "gh:{user}/{repo}@{version}" in bad.stderr and "Traceback" not in bad.stderr


def test_export_spa_writes_a_folder_for_a_static_host(tmp_path: Path) -> None:
    result = shop("export-spa", str(tmp_path / "site"), "--api-url", "https://api.example.com", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    index = (tmp_path / "site" / "index.html").read_text()
    assert "https://api.example.com" in index
    bad = shop("export-spa", str(tmp_path / "x"), "--api-url", "javascript:alert(1)", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
