"""The deployment files in ``deploy/``: what can be checked without a container engine.

No container registry is reachable here, so the image is not built; instead
the Dockerfile and the compose file are read and every command and
``CHATSERVER_*`` variable they use is checked against ``chatserver``'s own
parser, the systemd unit goes through ``systemd-analyze verify``, and the
Caddyfile runs for real: Debian's caddy in front of two chatserver processes
sharing a real redis-server, with a visitor and an agent chatting through it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from chatserver import cli

from ..conftest import Client, Server, seed
from ..redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _help_text() -> str:
    """Every option and environment variable ``chatserver serve`` knows."""
    serve = cli.parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    return str(serve.format_help())


def _known_variables() -> set[str]:
    return set(re.findall(r"CHATSERVER_[A-Z_]+", _help_text())) | {"CHATSERVER_ALLOW_UNTESTED"}


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def _parses(argv: list[str]) -> None:
    """``chatserver ARGV`` is a command the parser takes (it exits 2 otherwise)."""
    cli.parser().parse_args(argv)


def test_the_dockerfile_builds_with_the_locks_and_runs_unprivileged() -> None:
    steps = _dockerfile()
    runs = " && ".join(args for op, args in steps if op == "RUN")
    # The same commands as scripts/setup and CI: npm's lock, uv's lock with hashes.
    assert "npm ci" in runs and "npm run build" in runs and "npm run size" in runs
    assert "--require-hashes -r requirements/uv.txt" in runs
    assert "scripts/dist /dist" in runs
    assert "--require-hashes -r /tmp/dist/requirements.txt" in runs
    assert "--no-deps /tmp/dist/chatserver-*.whl" in runs
    froms = [args for op, args in steps if op == "FROM"]
    assert len(froms) == 3, "widget, dist and runtime stages"
    # Every file it copies from the repository exists.
    for op, args in steps:
        if op == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("VOLUME", '["/data"]') in steps
    (health,) = [args for op, args in steps if op == "HEALTHCHECK"]
    assert "/readyz" in health
    assert ("STOPSIGNAL", "SIGTERM") in steps
    env = " ".join(args for op, args in steps if op == "ENV")
    for name in re.findall(r"CHATSERVER_[A-Z_]+", env):
        assert name in _known_variables(), name
    # ENTRYPOINT + CMD is a command chatserver takes, in exec form (PID 1 gets SIGTERM).
    (entry,) = [args for op, args in steps if op == "ENTRYPOINT"]
    (cmd,) = [args for op, args in steps if op == "CMD"]
    argv = [*yaml.safe_load(entry), *yaml.safe_load(cmd)]
    assert argv[0] == "chatserver"
    _parses(argv[1:])


def test_the_dockerignore_keeps_local_builds_out() -> None:
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for name in (".venv", ".tools", "chatserver/widget_build", "**/node_modules", ".git"):
        assert name in ignored


def test_the_compose_file_names_only_real_options() -> None:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"redis", "chat1", "chat2", "proxy"} <= set(services)
    known = _known_variables()
    volumes = set(compose["volumes"])
    for name in ("chat1", "chat2"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / "deploy" / "Dockerfile").is_file()
        for variable in service["environment"]:
            assert variable in known, f"{name}: {variable} is not an option of chatserver"
        assert service["environment"]["CHATSERVER_REDIS_URL"].startswith("redis://redis:")
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        if "command" in service:
            _parses(list(service["command"]))
        for mount in service["volumes"]:
            assert mount.split(":")[0] in volumes
    # Both processes share the blobs volume (attachments, recordings).
    assert "blobs:/blobs" in services["chat1"]["volumes"]
    assert "blobs:/blobs" in services["chat2"]["volumes"]
    redis = services["redis"]["command"]
    assert redis[redis.index("--appendfsync") + 1] == "always"
    proxy = services["proxy"]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    upstreams = proxy["environment"]["CHATSERVER_UPSTREAMS"].split()
    assert upstreams == ["chat1:8000", "chat2:8000"]
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    for variable in proxy["environment"]:
        assert "{$" + variable in caddyfile


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (DEPLOY / "chatserver.service").read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.+)$", unit, re.M)
    argv = shlex.split(exec_start)
    assert argv[0] == "/opt/chatserver/bin/chatserver"
    _parses(argv[1:])
    for name in re.findall(r"CHATSERVER_[A-Z_]+", unit):
        assert name in _known_variables(), name
    for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet="):
        assert option in unit.splitlines()
    # verify needs the program to exist: this checkout's, in the unit's place.
    chatserver = shutil.which("chatserver", path=str(Path(sys.executable).parent))
    assert chatserver is not None
    copy = tmp_path / "chatserver.service"
    copy.write_text(unit.replace(argv[0], chatserver))
    done = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "chatserver.service" not in done.stderr, done.stderr  # no unknown key, no warning


def _start_caddy(tmp: Path, site_port: int, upstreams: list[Server]) -> subprocess.Popen[bytes]:
    caddy = shutil.which("caddy")
    if caddy is None:
        pytest.fail("caddy is not installed: run scripts/setup --system")
    env = {
        **os.environ,
        "CHATSERVER_SITE": f"http://127.0.0.1:{site_port}",
        "CHATSERVER_UPSTREAMS": " ".join(f"127.0.0.1:{s.port}" for s in upstreams),
        "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
        "XDG_DATA_HOME": str(tmp / "caddy-data"),
        "XDG_CONFIG_HOME": str(tmp / "caddy-config"),
        "HOME": str(tmp),
    }
    log = open(tmp / "caddy.log", "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [caddy, "run", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return proc


class _Proxy:
    """Caddy's address, shaped like ``Server`` for the test clients."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/ws"


@pytest.mark.anyio
@pytest.mark.usefixtures("close_clients")
async def test_the_caddyfile_proxies_two_processes(tmp_path: Path, redis: RedisServer) -> None:
    shop = await seed(tmp_path / "p0", redis_url=redis.url)
    procs = [
        Server(tmp_path / f"p{i}", "--redis", redis.url, "--forwarded-allow-ips", "127.0.0.1")
        for i in range(2)
    ]
    for proc in procs:
        proc.start()
    port = free_port()
    caddy = _start_caddy(tmp_path, port, procs)
    proxy = _Proxy(port)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert caddy.poll() is None, (tmp_path / "caddy.log").read_text()[-2000:]
            try:
                if httpx.get(f"{proxy.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "caddy.log").read_text()[-2000:]
            time.sleep(0.1)
        assert httpx.get(f"{proxy.url}/widget.js", timeout=5).status_code == 200
        # WebSockets through the proxy, on whichever process Caddy picks.
        (email,) = shop.agents
        agent = await Client.agent(proxy, email)  # type: ignore[arg-type]
        visitor = await Client.visitor(proxy, shop.key)  # type: ignore[arg-type]
        ack = await visitor.request({"t": "send", "cid": "1", "body": "through caddy"})
        conv = ack["conv"]
        await agent.expect(
            "conv", lambda f: f["conv"]["id"] == conv and f["conv"]["state"] == "active"
        )
        reply = await agent.request({"t": "send", "conv": conv, "cid": "r", "body": "answered"})
        assert reply["t"] == "ack", reply
        await visitor.expect("msg", lambda f: f["body"] == "answered")
        # A process that stops leaves; Caddy sends new clients to the other.
        procs[0].stop()
        for _ in range(3):
            other = await Client.visitor(proxy, shop.key)  # type: ignore[arg-type]
            assert other.welcome["visitor"].startswith("v_")
    finally:
        caddy.terminate()
        caddy.wait(10)
        for proc in procs:
            proc.stop()
