"""The ``chatserver`` command and the HTTP surface, run for real."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from chatserver.cli import ensure_demo, parser, size

from ..conftest import Server


def run(
    *args: str, data: Path, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatserver.cli", *args, "--data", str(data)]
        if data
        else [sys.executable, "-m", "chatserver.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_site_and_agent_commands_then_login(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = run(
        "site",
        "add",
        "Bike shop",
        "--origin",
        "https://bikes.example",
        "--department",
        "sales",
        data=data,
    )
    assert out.returncode == 0, out.stderr
    key = out.stdout.split("site key: ")[1].strip()
    listed = run("site", "list", data=data)
    assert key in listed.stdout and "https://bikes.example" in listed.stdout

    short = run(
        "agent",
        "add",
        "--site",
        key,
        "--email",
        "x@bikes.example",
        "--name",
        "X",
        data=data,
        stdin="short\n",
    )
    assert short.returncode == 2 and "8 characters" in short.stderr
    unknown = run(
        "agent",
        "add",
        "--site",
        key,
        "--email",
        "y@bikes.example",
        "--name",
        "Y",
        "--department",
        "repairs",
        data=data,
        stdin="long enough pw\n",
    )
    assert unknown.returncode == 2 and "repairs" in unknown.stderr
    added = run(
        "agent",
        "add",
        "--site",
        key,
        "--email",
        "Ann@Bikes.example",
        "--name",
        "Ann",
        "--admin",
        "--department",
        "sales",
        data=data,
        stdin="s3cret-pedals\n",
    )
    assert added.returncode == 0, added.stderr
    again = run(
        "agent",
        "add",
        "--site",
        key,
        "--email",
        "ann@bikes.example",
        "--name",
        "A2",
        data=data,
        stdin="s3cret-pedals\n",
    )
    assert again.returncode == 2 and "exists" in again.stderr
    # The password is never stored in clear.
    for f in data.iterdir():
        assert b"s3cret-pedals" not in f.read_bytes()

    server = Server(data).start()
    try:
        login = f"{server.url}/api/login"
        ok = httpx.post(login, json={"email": "ann@bikes.example", "password": "s3cret-pedals"})
        assert ok.status_code == 200 and ok.json()["agent"]["role"] == "admin"
        assert (
            httpx.post(login, json={"email": "ann@bikes.example", "password": "nope"}).status_code
            == 401
        )
        assert httpx.post(login, content=b"not json").status_code == 400
        codes = [
            httpx.post(
                login, json={"email": "ann@bikes.example", "password": f"bad{i}"}
            ).status_code
            for i in range(12)
        ]
        assert codes[-1] == 429 and 401 in codes
    finally:
        server.stop()


def test_every_serve_option_has_help_and_an_environment_twin() -> None:
    out = run("serve", "--help", data=None)  # type: ignore[arg-type]
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    for option, env in (
        ("--host", "CHATSERVER_HOST"),
        ("--port", "CHATSERVER_PORT"),
        ("--data", "CHATSERVER_DATA"),
        ("--redis", "CHATSERVER_REDIS_URL"),
        ("--redis-coordination", "CHATSERVER_REDIS_COORDINATION_URL"),
        ("--redis-cluster", "CHATSERVER_REDIS_CLUSTER"),
        ("--redis-sentinel", "CHATSERVER_REDIS_SENTINEL"),
        ("--redis-master", "CHATSERVER_REDIS_MASTER"),
        ("--sqlite-sync", "CHATSERVER_SQLITE_SYNC"),
        ("--grace", "CHATSERVER_GRACE"),
        ("--session-check", "CHATSERVER_SESSION_CHECK"),
        ("--log-level", "CHATSERVER_LOG_LEVEL"),
        ("--log-format", "CHATSERVER_LOG_FORMAT"),
        ("--metrics-token", "CHATSERVER_METRICS_TOKEN"),
        ("--shutdown-delay", "CHATSERVER_SHUTDOWN_DELAY"),
    ):
        assert option in text and env in text, option


def test_environment_twin_is_used(tmp_path: Path) -> None:
    data = tmp_path / "from-env"
    out = subprocess.run(
        [sys.executable, "-m", "chatserver.cli", "site", "add", "Env shop"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CHATSERVER_DATA": str(data)},
    )
    assert out.returncode == 0, out.stderr
    assert (data / "chatserver.db").exists()


def test_unreachable_redis_is_reported_clearly(tmp_path: Path) -> None:
    out = run("serve", "--redis", "redis://127.0.0.1:1", "--port", "1", data=tmp_path)
    assert out.returncode == 2 and "cannot reach Redis" in out.stderr


def test_demo_setup_is_idempotent(tmp_path: Path) -> None:
    site1, logins1 = asyncio.run(ensure_demo(tmp_path))
    site2, logins2 = asyncio.run(ensure_demo(tmp_path))
    assert site1.id == site2.id and logins1 == logins2 and len(logins1) == 2
    assert oct((tmp_path / "demo-logins.txt").stat().st_mode)[-3:] == "600"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    data = tmp_path_factory.mktemp("demo")
    asyncio.run(ensure_demo(data))
    server = Server(data).start()
    yield server  # type: ignore[misc]
    server.stop()


def test_healthz(demo_server: Server) -> None:
    r = httpx.get(f"{demo_server.url}/healthz")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["status"] == "ok" and body["backend"] == "embedded"
    assert oct((demo_server.data / "secret").stat().st_mode)[-3:] == "600"


def test_static_assets_are_cached_and_compressed(demo_server: Server) -> None:
    r = httpx.get(f"{demo_server.url}/static/demo/shop.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert "max-age" in r.headers["cache-control"]
    assert r.headers.get("etag")
    assert "javascript" in r.headers["content-type"]
    again = httpx.get(
        f"{demo_server.url}/static/demo/shop.js", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304


def test_demo_shop_pages(demo_server: Server) -> None:
    home = httpx.get(f"{demo_server.url}/demo/")
    assert home.status_code == 200 and '<script src="/widget.js" data-site="pk' in home.text
    assert httpx.get(f"{demo_server.url}/", follow_redirects=False).status_code in (302, 307)
    console = httpx.get(f"{demo_server.url}/console")
    assert console.status_code == 307 and console.headers["location"] == "/console/"


def test_upload_memory_option(tmp_path: Path) -> None:
    assert (size("65536"), size("512K"), size("64m"), size("1G")) == (
        65536,
        512 << 10,
        64 << 20,
        1 << 30,
    )
    args = parser().parse_args(["serve", "--data", str(tmp_path)])
    assert args.upload_memory == 64 * 1024 * 1024
    for bad in ("0", "-1M", "64MB", "lots", ""):
        with pytest.raises(SystemExit):
            parser().parse_args(["serve", "--upload-memory", bad])
