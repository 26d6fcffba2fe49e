"""Reproducible installs: the lock, the tested version ranges, and the wheel as the product.

``scripts/setup`` installs exactly ``uv.lock`` with the ``uv`` that
``requirements/uv.txt`` pins (in ``.tools/``). These tests check that the
lock still matches ``pyproject.toml``, that the version ranges the code
checks at start-up are the ones ``pyproject.toml`` declares, and that a wheel
built from this tree, installed alone into a fresh virtualenv with the
runtime part of the lock, serves the widget, the demo shop and the console.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest

import chatserver
from chatserver import cli, versions

from ..redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".tools" / "bin" / "uv"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _uv(*args: str, cwd: Path = ROOT, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    if not UV.is_file():
        pytest.fail(f"{UV} is missing: run scripts/setup")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_LINK_MODE": "copy"}
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [str(UV), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _requirement(name: str, group: list[str]) -> str:
    for line in group:
        if re.match(rf"{re.escape(name)}\s*[<>=!~]", line):
            return line
    raise AssertionError(f"{name} is not in {group}")


def test_the_lock_matches_pyproject() -> None:
    """``uv lock --locked`` fails when pyproject.toml changed without the lock."""
    done = _uv("lock", "--locked")
    assert done.returncode == 0, done.stderr


def test_the_lock_pins_every_package_with_hashes() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = [p for p in lock["package"] if p["name"] != "chatserver"]
    assert len(packages) > 20
    for package in packages:
        assert package.get("version"), package["name"]
        files = [package.get("sdist"), *package.get("wheels", [])]
        hashed = [f for f in files if f and f.get("hash", "").startswith("sha256:")]
        assert hashed, f"{package['name']} has no hashed file in uv.lock"


def test_linters_are_pinned_exactly() -> None:
    test = PYPROJECT["project"]["optional-dependencies"]["test"]
    for name in ("ruff", "mypy"):
        assert re.fullmatch(rf"{name}==[0-9.]+", _requirement(name, test)), name


def test_uv_itself_is_pinned_by_hash() -> None:
    text = (ROOT / "requirements" / "uv.txt").read_text()
    assert re.search(r"^uv==[0-9.]+ \\$", text, re.M)
    assert len(re.findall(r"--hash=sha256:[0-9a-f]{64}", text)) >= 2


@pytest.mark.parametrize("name", sorted(versions.TESTED))
def test_tested_ranges_are_pyprojects(name: str) -> None:
    """The start-up check and pyproject.toml name the same range."""
    low, high = versions.TESTED[name]
    line = _requirement(name, PYPROJECT["project"]["dependencies"])
    assert sorted(line.split(name, 1)[1].split(",")) == sorted([f">={low}", f"<{high}"])


def test_the_installed_releases_are_in_range() -> None:
    assert versions.untested() == []
    assert versions.check() is None


def test_an_untested_release_is_named() -> None:
    fake = {"uvicorn": "0.56.0", "websockets": "13.1"}
    problems = versions.untested(fake.__getitem__)
    assert problems == [
        "uvicorn 0.56.0 is installed, but chatserver is tested with uvicorn>=0.54,<0.56",
        "websockets 13.1 is installed, but chatserver is tested with websockets>=14,<18",
    ]
    inside = {"uvicorn": "0.55.0rc1", "websockets": "17.4"}
    assert versions.untested(inside.__getitem__) == []


def test_serve_refuses_an_untested_release(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(versions.OVERRIDE, raising=False)
    monkeypatch.setitem(versions.TESTED, "uvicorn", ("0.1", "0.2"))
    status = cli.main(["serve", "--data", str(tmp_path), "--port", str(free_port())])
    assert status == 2
    err = capsys.readouterr().err
    assert "uvicorn" in err and "uvicorn>=0.1,<0.2" in err
    assert versions.OVERRIDE in err and "scripts/setup" in err
    assert not (tmp_path / "chatserver.db").exists()


def test_the_override_lets_it_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(versions.TESTED, "uvicorn", ("0.1", "0.2"))
    monkeypatch.setenv(versions.OVERRIDE, "1")
    assert versions.check() is None


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"chatserver {chatserver.__version__}"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {chatserver.__version__} " in changelog


@pytest.mark.slow
def test_the_wheel_alone_serves_widget_demo_and_console(tmp_path: Path) -> None:
    """scripts/dist, then the wheel alone in a fresh venv serves the demo (as docs/deploy.md)."""
    dist = tmp_path / "dist"
    built = subprocess.run(
        [str(ROOT / "scripts" / "dist"), str(dist)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    wheel = next(dist.glob("chatserver-*.whl"))
    sdist = next(dist.glob("chatserver-*.tar.gz"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for needed in (
        "chatserver/widget_build/widget.js",
        "chatserver/widget_build/manifest.json",
        "chatserver/widget_build/THIRD_PARTY_NOTICES.txt",
        "chatserver/lua/append.lua",
        "chatserver/templates/demo/home.html",
        "chatserver/mail/templates/reply.html",
        "agent_console/templates/login.html",
        "agent_console/static/chat/main.js",
        "agent_console/locale/ca/LC_MESSAGES/console.po",  # the console's languages
        "agent_console/locale/es/LC_MESSAGES/console.po",
        "recordings/templates/sessions.html",
    ):
        assert needed in names, f"{needed} is not in {wheel.name}"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert any(re.fullmatch(r"chatserver/widget_build/chat\.[A-Z0-9]+\.js", n) for n in names)
    listing = subprocess.run(["tar", "tzf", str(sdist)], capture_output=True, text=True, check=True)
    assert "/chatserver/widget_build/widget.js" in listing.stdout

    # A venv with the runtime part of the lock (no test tools, not this checkout).
    venv = tmp_path / "venv"
    made = _uv("venv", "--python", sys.executable, str(venv))
    assert made.returncode == 0, made.stderr
    requirements = dist / "requirements.txt"
    assert "--hash=sha256:" in requirements.read_text()
    pinned = re.findall(r"^([a-z0-9_.-]+)==", requirements.read_text(), re.M)
    assert "starlette" in pinned and "uvicorn" in pinned
    assert "pytest" not in pinned and "mypy" not in pinned  # the runtime only
    python = str(venv / "bin" / "python")
    for args in (
        ("--require-hashes", "-r", str(requirements)),
        ("--no-deps", str(wheel)),
    ):
        done = _uv("pip", "install", "--python", python, *args)
        assert done.returncode == 0, done.stderr

    # Run it from an empty folder, so nothing can come from the checkout.
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSERVER_")}
    env.pop("PYTHONPATH", None)
    where = subprocess.run(
        [python, "-c", "import chatserver, agent_console; print(chatserver.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout
    port = free_port()
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "chatserver"), "demo", "--port", str(port), "--data", "data"],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        widget = httpx.get(f"{base}/widget.js", timeout=5)
        assert widget.status_code == 200
        assert "javascript" in widget.headers["content-type"]
        chat = re.search(r"widget/(chat\.[A-Z0-9]+\.js)", widget.text)
        assert chat is not None, widget.text[:200]
        assert httpx.get(f"{base}/widget/{chat.group(1)}", timeout=5).status_code == 200
        shop = httpx.get(f"{base}/demo/", timeout=5)
        assert shop.status_code == 200 and "/widget.js" in shop.text
        login = httpx.get(f"{base}/console/login", timeout=5)
        assert login.status_code == 200 and 'name="password"' in login.text
        notices = httpx.get(f"{base}/widget/THIRD_PARTY_NOTICES.txt", timeout=5)
        assert notices.status_code == 200 and "rrweb" in notices.text
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text()
