"""The pools file and nginx's configuration: every mistake is one clear line, routing takes the longest prefix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shop.runtime.nginx import Nginx, NginxError, NginxFiles, StaticFile, Upstream, find_nginx, render
from shop.runtime.pools import PoolsFileError, parse_pools, read_pools
from tests.runtime.harness import shop_env

REPO = Path(__file__).resolve().parents[2]
GOOD = """
[server]
listen = "127.0.0.1:8000"
[budget]
cores = 2
memory_mb = 2048
worker_memory_mb = 256
[pools.catalog]
prefixes = ["/", "/api/v1/products"]
min = 1
max = 3
[pools.checkout]
prefixes = ["/api/v1/checkout", "/api/v1/carts/"]
min = 2
max = 2
backup = "10.0.0.2:8000"
"""


def test_the_example_file_keeps_the_pools_the_deployment_mirrors() -> None:
    plan = read_pools(REPO / "examples" / "pools.toml")
    assert {p.name: p.prefixes for p in plan.pools} == {
        "catalog": ("/", "/api/v1/products", "/api/v1/categories", "/media"),
        "checkout": ("/api/v1/carts", "/api/v1/checkout", "/api/v1/orders", "/api/v1/shipping-methods",
                     "/api/v1/payments"),
        "account": ("/api/v1/auth", "/api/v1/me"),
        "admin": ("/admin", "/metrics"),
    }
    assert plan.notes == []


def test_a_good_file_is_read_with_its_budget_and_backup() -> None:
    plan = parse_pools(GOOD)
    assert plan.listen == "127.0.0.1:8000"
    assert (plan.budget.cores, plan.budget.memory_mb, plan.budget.worker_memory_mb) == (2.0, 2048, 256)
    checkout = plan.pools[1]
    assert (checkout.prefixes, checkout.min_workers, checkout.max_workers, checkout.backup) == (
        ("/api/v1/checkout", "/api/v1/carts"), 2, 2, "10.0.0.2:8000")
    assert plan.with_backup("unix:/run/backup.sock").pools[0].backup == "unix:/run/backup.sock"


@pytest.mark.parametrize(("path", "pool"), [
    ("/api/v1/products", "catalog"), ("/api/v1/products/linen-shirt", "catalog"), ("/c/shirts", "catalog"),
    ("/api/v1/carts/abc/items", "checkout"), ("/api/v1/checkout", "checkout"),
    ("/api/v1/checkoutx", "catalog"),  # whole segments only: falls back to "/"
])
def test_the_longest_prefix_owns_a_path(path: str, pool: str) -> None:
    found = parse_pools(GOOD).pool_for(path)
    assert found is not None and found.name == pool


def test_without_a_pool_owning_the_root_the_plan_says_what_happens() -> None:
    plan = parse_pools('[pools.api]\nprefixes = ["/api"]\nmin = 1\nmax = 1\n[budget]\nmemory_mb = 1024\n')
    assert plan.pool_for("/c/shirts") is None
    assert plan.notes and "404" in plan.notes[0]


POOL = '[pools.catalog]\nprefixes = ["/"]\nmin = 1\nmax = 2\n'


@pytest.mark.parametrize(("text", "message"), [
    ("[pools.catalog\n", "not valid TOML"),
    ('[server]\nlisten = "127.0.0.1:8000"\nworkers = 4\n' + POOL, "[server]: unknown key 'workers'"),
    ('[pools.catalog]\nprefixes = ["/"]\nmin = 1\nmax = 2\nmn = 1\n', "[pools.catalog]: unknown key 'mn'"),
    ("[pool.catalog]\nmin = 1\n", "unknown table or key 'pool'"),
    (POOL + '[pools.api]\nprefixes = ["/api", "/"]\nmin = 1\nmax = 1\n',
     "prefix '/' is in both [pools.catalog] and [pools.api]"),
    ('[pools.catalog]\nprefixes = ["/"]\nmin = 3\nmax = 2\n', "[pools.catalog]: min (3) is more than max (2)"),
    ('[pools.catalog]\nprefixes = ["/"]\nmin = 0\nmax = 2\n', "[pools.catalog]: min must be at least 1"),
    ('[pools.catalog]\nprefixes = ["/"]\nmin = "two"\nmax = 2\n', "min must be a whole number"),
    ('[pools.catalog]\nprefixes = ["/"]\nmax = 2\n', "[pools.catalog]: min is missing"),
    ('[pools.catalog]\nprefixes = ["api"]\nmin = 1\nmax = 2\n', "prefix 'api' must be a path starting with /"),
    ('[pools.catalog]\nprefixes = ["/static/css"]\nmin = 1\nmax = 2\n', "overlaps /static/"),
    ('[pools.Catalog]\nprefixes = ["/"]\nmin = 1\nmax = 2\n', "a pool name is lower-case"),
    ('[server]\nlisten = "localhost"\n' + POOL, "listen must be host:port"),
    ('[server]\nlisten = "127.0.0.1:70000"\n' + POOL, "listen must be host:port"),
    ('[pools.catalog]\nprefixes = ["/"]\nmin = 1\nmax = 2\nbackup = "backup-host"\n', 'backup must be "host:port"'),
    ("[server]\n", "no pools"),
    ('[budget]\nmemory_mb = 600\nworker_memory_mb = 512\n' + POOL.replace("min = 1", "min = 2"),
     "need 1024 MB"),
])
def test_a_bad_pools_file_gets_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(PoolsFileError) as caught:
        parse_pools(text, where="pools.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("pools.toml") and "\n" not in str(caught.value)


def _serve(args: list[str], cwd: Path, db_url: str = "sqlite:///shop.db") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shop", "serve", *args], cwd=cwd, env=shop_env(db_url),
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_command_prints_a_bad_file_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "pools.toml").write_text('[pools.catalog]\nprefixes = ["/"]\nmin = 3\nmax = 2\n')
    done = _serve(["--pools", "pools.toml"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: pools.toml [pools.catalog]: min (3) is more than max (2)"
    assert "Traceback" not in done.stdout + done.stderr


def test_a_missing_nginx_is_named_with_the_package_to_install(tmp_path: Path) -> None:
    (tmp_path / "pools.toml").write_text(POOL)
    done = _serve(["--pools", "pools.toml", "--nginx", str(tmp_path / "no-nginx")], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "nginx is not at" in done.stderr and "apt-get install nginx" in done.stderr
    with pytest.raises(NginxError, match="apt-get install nginx"):
        find_nginx(str(tmp_path / "no-nginx"))


def test_options_that_need_the_other_mode_are_refused(tmp_path: Path) -> None:
    (tmp_path / "pools.toml").write_text(POOL)
    assert "--workers and --bind do not apply" in _serve(["--pools", "pools.toml", "--workers", "2"],
                                                         tmp_path).stderr
    assert "--backup and --nginx need --pools" in _serve(["--backup", "10.0.0.2:8000"], tmp_path).stderr


def test_nginx_accepts_the_generated_configuration(tmp_path: Path) -> None:
    """Longest prefix first is nginx's own rule; the file must pass `nginx -t` with a backup marked down."""
    static = tmp_path / "shop.css"
    static.write_text("body{}")
    files = NginxFiles.under(tmp_path / "nginx")
    conf = render(listen="127.0.0.1:18999", files=files,
                  upstreams=[Upstream("catalog", tmp_path / "c.sock", ("/", "/api/v1/products")),
                             Upstream("checkout", tmp_path / "k.sock", ("/api/v1/checkout",), backup="127.0.0.1:9",
                                      main_down=True)],
                  static_files=[StaticFile("/static/shop.0123456789.css", static, immutable=True)])
    assert "server 127.0.0.1:9 backup;" in conf and f"server unix:{tmp_path / 'k.sock'} down;" in conf
    assert "non_idempotent" not in conf and "proxy_next_upstream error timeout http_502 http_503 http_504;" in conf
    assert "location ^~ /api/v1/checkout/ { proxy_pass http://pool_checkout; }" in conf
    nginx = Nginx(find_nginx(), files)
    nginx.write(conf)
    nginx.check()
    with pytest.raises(NginxError, match="cannot go into nginx"):
        render(listen="127.0.0.1:1; evil", files=files, upstreams=[], static_files=[])
