"""The browser-test harness, shared by the storefront tests: a real shop, Debian's Chromium, screenshots.

- `live_shop` (session, one per backend under test): `shop serve`'s gunicorn with uvicorn workers on a free
  port, over a migrated database of its own seeded with the demo catalogue. Tests may buy from it freely.
- `browser` (session): Chromium from /usr/bin/chromium (or SHOP_TEST_CHROMIUM) through Playwright, headless.
  Missing, it fails the run when SHOP_TEST_DATABASES is set (CI), and skips otherwise.
- `page`: a fresh browser context and page; the test fails if any page in it throws an uncaught error or the
  browser blocks something for CSP or CORS reasons.
- `screenshot`: `await screenshot(page, "spa-home")` saves var/screenshots/spa-home.png (git-ignored); the
  paths are listed at the end of the run.
- `static_host`: an empty folder served by a plain static file server on the one other origin the live
  shop's CORS allows (`live_shop.spa_origin`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import pytest_asyncio

from shop.bootstrap import build_auth, build_databases
from shop.config import Settings
from shop.domain.users import Role
from shop.runtime import serve
from tests.conftest import SELECTION, make_settings, migrate_all, seed_demo
from tests.databases import DatabaseFactory
from tests.integration.smtp_server import Inbox, smtp_server

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "var" / "screenshots"
CHROMIUM = Path(os.environ.get("SHOP_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
WORKERS = 2
# what a page must never log: the browser refused something the shop needs
BLOCKED = re.compile(r"Content Security Policy|Content-Security-Policy|CORS|Access-Control|Refused to", re.I)

_saved: list[Path] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LiveShop:
    url: str  # http://127.0.0.1:PORT, no trailing slash
    settings: Settings  # of its database, for tests that look behind the HTTP API
    backend: str
    spa_origin: str  # the other origin its CORS allows (see `static_host`)
    log: Path  # the server's output
    inbox: Inbox  # the SMTP server its `shop worker` delivers e-mail to

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _wait_until_answers(url: str, process: subprocess.Popen[Any], log: Path, *, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server at {url} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer in {seconds:.0f} s:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[Any], output: IO[Any]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    output.close()


def _server_argv(port: int, run_dir: Path) -> list[str]:
    """`shop serve`'s own gunicorn command line."""
    return serve.gunicorn_argv(serve.ServeOptions(host="127.0.0.1", port=port, workers=WORKERS,
                                                  log_level="warning", run_dir=run_dir))


@pytest_asyncio.fixture(scope="session")
async def live_shop_settings(backend: str, db_factory: DatabaseFactory) -> Settings:
    """A migrated database of `backend` with the demo catalogue, for `live_shop` alone."""
    settings = make_settings(await db_factory.url(backend, "browser"))
    await migrate_all(settings)
    await seed_demo(settings)
    return settings


@pytest.fixture(scope="session")
def live_shop(backend: str, live_shop_settings: Settings,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    """A running shop with the demo catalogue on a database of `backend`; tests may buy from it freely."""
    home = tmp_path_factory.mktemp(f"live-shop-{backend}")
    (home / "run").mkdir()
    port, spa_port = free_port(), free_port()
    url, spa_origin = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{spa_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    env.update(SHOP_MAIN_DB_URL=live_shop_settings.main_db_url, SHOP_PUBLIC_URL=url,
               SHOP_CORS_ORIGINS=json.dumps([spa_origin]), SHOP_SECRET_KEY=secrets.token_urlsafe(48),
               SHOP_CATALOG_POLL_INTERVAL="0.2",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p))
    log = home / "server.log"
    output = log.open("w")
    with smtp_server() as inbox:
        # e-mail leaves through the outbox: a real `shop worker` delivers it to a real SMTP server
        env.update(SHOP_MAIL_BACKEND="smtp", SHOP_SMTP_HOST="127.0.0.1", SHOP_SMTP_PORT=str(inbox.port),
                   SHOP_SMTP_STARTTLS="false")
        process = subprocess.Popen(_server_argv(port, home / "run"), env=env, cwd=home, stdout=output,
                                   stderr=subprocess.STDOUT)
        worker_log = (home / "worker.log").open("w")
        worker = subprocess.Popen([sys.executable, "-m", "shop", "worker", "--idle", "0.2"], env=env, cwd=home,
                                  stdout=worker_log, stderr=subprocess.STDOUT)
        try:
            _wait_until_answers(f"{url}/readyz", process, log)
            yield LiveShop(url=url, settings=live_shop_settings, backend=backend, spa_origin=spa_origin, log=log,
                           inbox=inbox)
        finally:
            _stop(worker, worker_log)
            _stop(process, output)


@pytest.fixture
def static_host(live_shop: LiveShop, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """An empty folder and the URL a plain static file server serves it at, on `live_shop.spa_origin`."""
    folder = tmp_path / "site"
    folder.mkdir()
    port = live_shop.spa_origin.rsplit(":", 1)[1]
    log = tmp_path / "static-host.log"
    output = log.open("w")
    process = subprocess.Popen([sys.executable, "-m", "http.server", port, "--bind", "127.0.0.1",
                                "--directory", str(folder)], stdout=output, stderr=subprocess.STDOUT)
    try:
        (folder / "ping.txt").write_text("ok")
        _wait_until_answers(f"{live_shop.spa_origin}/ping.txt", process, log, seconds=10)
        (folder / "ping.txt").unlink()
        yield folder, f"{live_shop.spa_origin}/"
    finally:
        _stop(process, output)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Where Chromium is; missing, the run fails when SHOP_TEST_DATABASES is set (CI) and skips otherwise."""
    problem = None
    if not CHROMIUM.is_file():
        problem = f"Chromium is not at {CHROMIUM}: apt-get install chromium, or name it in SHOP_TEST_CHROMIUM"
    elif importlib.util.find_spec("playwright") is None:
        problem = "the playwright package is missing: pip install -e '.[dev]'"
    if problem:
        if SELECTION.required:  # CI names its databases: the browser tests must run there
            pytest.fail(problem)
        pytest.skip(problem)
    return CHROMIUM


@pytest_asyncio.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (never a browser Playwright downloads)."""
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=10_000)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), headless=True,
                                                    args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A page in a fresh context (no storage from other tests), watched for script errors and blocked loads."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB",
                                        timezone_id="Europe/Berlin")
    context.set_default_timeout(15_000)
    troubles: list[str] = []
    context.on("weberror", lambda error: troubles.append(f"uncaught error: {error.error}"))
    context.on("console", lambda message: troubles.append(f"console {message.type}: {message.text}")
               if message.type == "error" and BLOCKED.search(message.text) else None)
    tab = await context.new_page()
    try:
        yield tab
    finally:
        await context.close()
    assert not troubles, "the browser reported:\n" + "\n".join(troubles)


@pytest.fixture
def screenshot() -> Callable[[Any, str], Awaitable[Path]]:
    """`await screenshot(page, name)`: the whole page as var/screenshots/<name>.png."""
    async def take(page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
        if path not in _saved:
            _saved.append(path)
        return path

    return take


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _saved:
        terminalreporter.write_sep("-", "screenshots (not committed)")
        for path in _saved:
            terminalreporter.write_line(str(path.relative_to(REPO) if path.is_relative_to(REPO) else path))


STAFF_PASSWORD = "staff-password-long"


async def staff_account(shop: LiveShop) -> str:
    """A new staff member of the live shop (password STAFF_PASSWORD); returns their e-mail address."""
    email = f"staff-{uuid.uuid4().hex[:10]}@example.com"
    databases = build_databases(shop.settings)
    try:
        await build_auth(shop.settings, databases).register(email=email, password=STAFF_PASSWORD,
                                                            roles=frozenset({Role.CUSTOMER, Role.STAFF}))
    finally:
        await databases.dispose()
    return email
