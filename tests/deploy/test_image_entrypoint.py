"""The image's command, run as the image runs it — without Docker.

deploy/Dockerfile is read for what its final stage sets: ENV, WORKDIR, ENTRYPOINT + CMD, HEALTHCHECK and where the
builder's venv lands. The project is installed into a fresh venv (not the editable checkout), the container's paths
are mapped to temporary folders (/opt/shop → the venv, /app → a working directory), and then, with the image's
environment and nothing of ours: `shop migrate` as the migration Job runs it, ENTRYPOINT + CMD until /readyz
answers, the HEALTHCHECK command, SIGTERM; and `shop worker`, the image's other command.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Docker's default PATH
READY_WITHIN = 60.0


@dataclass
class Image:
    """What the final stage of a Dockerfile gives a container."""

    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = ""
    expose: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    copied_from_builder: list[str] = field(default_factory=list)

    @property
    def command(self) -> list[str]:
        return [*self.entrypoint, *self.cmd]


def _instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            logical += line.rstrip()[:-1] + " "
            continue
        logical += line
        if logical.strip():
            keyword, _, rest = logical.strip().partition(" ")
            yield keyword.upper(), rest.strip()
        logical = ""


def _expand(value: str, known: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: known.get(m[1] or m[2], ""), value)


def parse_dockerfile(text: str) -> Image:
    """The final stage's settings (ARG defaults declared before the first FROM count for every stage)."""
    global_args: dict[str, str] = {}
    image = Image()
    stages = 0
    for keyword, rest in _instructions(text):
        if keyword == "FROM":
            stages += 1
            image = Image(args=dict(global_args))
            continue
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            (global_args if stages == 0 else image.args)[name] = shlex.split(default)[0] if default.strip('"') else ""
        elif keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                image.env[name] = _expand(value, {"PATH": CONTAINER_PATH, **image.args, **image.env})
        elif keyword == "WORKDIR":
            image.workdir = rest
        elif keyword == "USER":
            image.user = rest
        elif keyword == "EXPOSE":
            image.expose = rest.split()
        elif keyword == "ENTRYPOINT":
            image.entrypoint = json.loads(rest)
        elif keyword == "CMD":
            image.cmd = json.loads(rest)
        elif keyword == "HEALTHCHECK":
            image.healthcheck = json.loads(rest[rest.index(" CMD ") + len(" CMD "):])
        elif keyword == "COPY" and rest.startswith("--from=builder"):
            image.copied_from_builder.append(rest.split()[-1])
    assert stages >= 2, "deploy/Dockerfile should build in one stage and run in another"
    return image


IMAGE = parse_dockerfile(DOCKERFILE.read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Container:
    """The image's filesystem mapped onto temporary folders: its venv and its working directory."""

    venv: Path
    workdir: Path

    def path(self, value: str) -> str:
        """A value with the container's paths (/opt/shop…, /app…) turned into ours."""
        for inside, outside in ((IMAGE.copied_from_builder[0], self.venv), (IMAGE.workdir, self.workdir)):
            value = re.sub(rf"(?<![\w/.-]){re.escape(inside)}(?=/|:|$)", str(outside), value)
        return value

    def env(self, **overrides: str) -> dict[str, str]:
        """Exactly the image's environment (paths mapped), plus `overrides`; nothing from the test's own."""
        env = {"PATH": CONTAINER_PATH, "HOME": str(self.workdir), "LANG": "C.UTF-8"}
        env.update({name: self.path(value) for name, value in IMAGE.env.items()})
        env.update(overrides)
        return env

    def argv(self, command: list[str], env: dict[str, str]) -> list[str]:
        program = shutil.which(command[0], path=env["PATH"])
        assert program is not None, f"{command[0]!r} is not on the image's PATH {env['PATH']}"
        assert Path(program).is_relative_to(self.venv), f"{command[0]} resolves to {program}, outside the venv"
        return [program, *command[1:]]


def _install_project(venv: Path, scratch: Path) -> None:
    """The project into `venv` as `pip install .` puts it: a real wheel when hatchling (its build backend) is at
    hand offline; otherwise the same files the wheel holds (src/shop) and the same console script."""
    python = venv / "bin" / "python"
    if importlib.util.find_spec("hatchling") is not None:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
                        "--no-build-isolation", "--wheel-dir", str(scratch), str(ROOT)], check=True, timeout=120)
        wheel = next(scratch.glob("shop-*.whl"))
        subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                        "--no-index", str(wheel)], check=True, timeout=120)
        return
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    shutil.copytree(ROOT / "src" / "shop", site / "shop", ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
    subprocess.run([str(python), "-m", "compileall", "-q", str(site / "shop")], check=True, timeout=120)  # as pip does
    script = venv / "bin" / "shop"
    script.write_text(f"#!{python}\nimport sys\nfrom shop.cli import main\n\nif __name__ == '__main__':\n"
                      "    sys.exit(main())\n")
    script.chmod(0o755)


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Container:
    root = tmp_path_factory.mktemp("image")
    venv, workdir = root / "opt-shop", root / "app"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    # The third-party packages are those of the environment running the tests, reached through a .pth line: the
    # folder joins sys.path without being processed as a site, so the checkout's editable `shop` stays out.
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "zz-test-dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    _install_project(venv, root)
    (workdir / "var").mkdir(parents=True)  # the image makes /app/var, owned by its user
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import shop; print(shop.__file__)"],
                           capture_output=True, text=True, check=True, env={"PATH": CONTAINER_PATH}, cwd=workdir)
    assert Path(found.stdout.strip()).is_relative_to(venv), f"imported the checkout's shop: {found.stdout}"
    return Container(venv=venv, workdir=workdir)


@pytest.fixture(scope="module")
def migrated(container: Container) -> Container:
    """`shop migrate` run as the migration Job runs it: the image's entrypoint with `migrate` for CMD."""
    env = container.env()
    result = subprocess.run(container.argv([*IMAGE.entrypoint, "migrate"], env), env=env, cwd=container.workdir,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return container


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def _stop(process: subprocess.Popen[bytes], log: Path) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"did not stop within 30 s of SIGTERM:\n{_tail(log)}")


def test_the_image_runs_the_shop_as_a_fixed_unprivileged_user_on_the_port_it_exposes() -> None:
    assert IMAGE.user.split(":")[0] == "10001"
    assert IMAGE.env["SHOP_HOST"] == "0.0.0.0"
    assert IMAGE.expose == [IMAGE.env["SHOP_PORT"]] == ["8000"]
    assert IMAGE.command == ["shop", "serve"], "the default is `shop serve`, host and port from SHOP_HOST/SHOP_PORT"
    assert IMAGE.copied_from_builder == ["/opt/shop"], "only the venv comes from the builder"
    assert IMAGE.env["SHOP_VAR_DIR"].startswith(IMAGE.workdir + "/")
    assert "/healthz" in " ".join(IMAGE.healthcheck) and "SHOP_PORT" in " ".join(IMAGE.healthcheck)


def test_after_migrate_the_default_command_serves_until_sigterm(migrated: Container) -> None:
    container = migrated
    assert (container.workdir / "var" / "shop.db").exists(), "the stores belong in the image's var/ volume"
    # moved from the image's values: the port (8000 may be taken here), and one worker process instead of one per
    # core (the deployments set SHOP_WORKERS; the command is the image's either way)
    port = free_port()
    env = container.env(SHOP_PORT=str(port), SHOP_WORKERS="1")
    log = container.workdir.parent / "serve.log"

    with log.open("wb") as out:
        process = subprocess.Popen(container.argv(IMAGE.command, env), env=env, cwd=container.workdir,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_WITHIN
        while True:
            assert process.poll() is None, f"the server exited with {process.returncode}:\n{_tail(log)}"
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"/readyz did not answer 200 within {READY_WITHIN:.0f} s:\n{_tail(log)}"
            time.sleep(0.2)

        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        page = httpx.get(f"{base}/", timeout=10)
        assert page.status_code == 200, page.text[:500]
        stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page.text)
        assert stylesheet, "the storefront links its stylesheet"
        assert httpx.get(base + stylesheet[1], timeout=5).status_code == 200, "static files are in the package"
        assert httpx.get(f"{base}/api/v1/categories", timeout=10).status_code == 200

        probe = container.argv(IMAGE.healthcheck, env)
        health = subprocess.run(probe, env=env, cwd=container.workdir, capture_output=True, text=True, timeout=10,
                                check=False)
        assert health.returncode == 0, f"the HEALTHCHECK command failed: {health.stderr}"
    finally:
        code = _stop(process, log) if process.poll() is None else process.returncode
    assert code == 0, f"gunicorn exited with {code} on SIGTERM:\n{_tail(log)}"


def test_the_worker_command_starts_and_stops_cleanly(migrated: Container) -> None:
    container = migrated
    env = container.env()
    log = container.workdir.parent / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(container.argv([*IMAGE.entrypoint, "worker"], env), env=env,
                                   cwd=container.workdir, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_WITHIN
        while "delivering e-mail" not in _tail(log):
            assert process.poll() is None, f"the worker exited with {process.returncode}:\n{_tail(log)}"
            assert time.monotonic() < deadline, f"the worker did not start within {READY_WITHIN:.0f} s:\n{_tail(log)}"
            time.sleep(0.2)
        assert str(container.workdir / "var" / "mail") in _tail(log), "mail files go under the image's var/"
    finally:
        code = _stop(process, log) if process.poll() is None else process.returncode
    assert code == 0, _tail(log)
    assert "stopped after" in _tail(log)
