"""No secrets in logs or errors (issue #15): ``chatserver.redact`` and its use.

Unit tests for the helper, then real ``chatserver`` processes given Redis
URLs with passwords that fail (a closed port; a real redis-server refusing
the password; one whose password changes under a running server): the
password appears nowhere in what the process writes or answers.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from chatserver import redact
from chatserver.redact import MASK, redact_url, scrub, secrets_of

from ..conftest import ROOT, Server
from ..redis_server import RedisServer, free_port

SECRET = "s3cr3tpw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:s3cr3tpw@127.0.0.1:6379/0", "redis://user:***@127.0.0.1:6379/0"),
        ("redis://:s3cr3tpw@redis.internal/2", "redis://:***@redis.internal/2"),
        ("rediss://user:p%40ss%3Aw@host:6380/0", "rediss://user:***@host:6380/0"),
        ("redis://user:p@ss@host/0", "redis://user:***@host/0"),  # an unescaped @
        ("redis://user@host/0", "redis://user@host/0"),  # a user name is no secret
        ("redis://host:6379/0", "redis://host:6379/0"),
        (
            "unix:///run/redis.sock?db=1&password=s3cr3tpw",
            "unix:///run/redis.sock?db=1&password=***",
        ),
        ("redis://h/0?Password=x&username=u", "redis://h/0?Password=***&username=u"),
        (
            "s3://bucket/key?X-Amz-Signature=abc&X-Amz-Credential=AKIA&x=1",
            "s3://bucket/key?X-Amz-Signature=***&X-Amz-Credential=***&x=1",
        ),
        ("postgresql://app:s3cr3tpw@db:5432/chat", "postgresql://app:***@db:5432/chat"),
        ("redis://u:s3cr3tpw@[::1", "redis://u:***@[::1"),  # does not parse: still cleaned
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert SECRET not in redact_url(url)


def test_secrets_of_finds_written_and_decoded_forms() -> None:
    assert secrets_of("redis://u:p%40ss@h/0") == {"p%40ss", "p@ss"}
    assert secrets_of("redis://h/0?password=a%20b&db=1") >= {"a b"}
    assert secrets_of("redis://u@h/0") == set()
    assert secrets_of("redis://u:@h/0") == set()  # an empty password hides nothing


def test_scrub_replaces_urls_and_their_secrets() -> None:
    url = f"redis://user:{SECRET}@127.0.0.1:1/0"
    text = f"Error connecting to {url}; AUTH {SECRET} failed"
    clean = scrub(text, url)
    assert SECRET not in clean
    assert "redis://user:***@127.0.0.1:1/0" in clean and f"AUTH {MASK} failed" in clean


def test_the_logging_guard_scrubs_messages_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "redis://user:guardedpw@127.0.0.1:1/0"
    redact.protect(url)
    redact.install()
    redact.install()  # idempotent
    log = logging.getLogger("chatserver.test_redact")
    with caplog.at_level(logging.INFO):
        log.info("connecting to %s", url)
        try:
            raise ValueError(f"bad url {url}")
        except ValueError:
            log.exception("failed")
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "guardedpw" not in text
    assert "redis://user:***@127.0.0.1:1/0" in text and "ValueError" in text


def _serve(tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``chatserver serve`` with ``url``, expected to give up: its output and exit code."""
    cmd = [sys.executable, "-m", "chatserver.cli", "serve", "--port", str(free_port())]
    cmd += ["--data", str(tmp), "--redis", url, *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_closed_port_does_not_show_the_password(tmp_path: Path, fmt: str) -> None:
    url = f"redis://user:{SECRET}@127.0.0.1:{free_port()}/0?password={SECRET}q"
    done = _serve(tmp_path, url, "--log-format", fmt)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "cannot reach Redis at redis://user:***@127.0.0.1:" in out, out
    assert SECRET not in out, out


@pytest.fixture
def locked_redis(tmp_path: Path) -> RedisServer:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path / "redis").start()
    client = redis.Redis(port=server.port)
    client.config_set("requirepass", "the-right-one")
    client.close()
    return server


def test_a_wrong_password_does_not_show_it(tmp_path: Path, locked_redis: RedisServer) -> None:
    try:
        done = _serve(tmp_path, f"redis://:{SECRET}@127.0.0.1:{locked_redis.port}/0")
        out = done.stdout + done.stderr
        assert done.returncode != 0
        assert "cannot reach Redis at redis://:***@127.0.0.1" in out, out
        assert SECRET not in out, out
        # The management commands say the same.
        cmd = [sys.executable, "-m", "chatserver.cli", "site", "list", "--data", str(tmp_path)]
        cmd += ["--redis", f"redis://:{SECRET}@127.0.0.1:{locked_redis.port}/0"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "***" in done.stderr, done.stderr
        assert SECRET not in done.stdout + done.stderr
    finally:
        locked_redis.stop()


def test_a_password_changed_under_a_running_server_stays_out_of_its_log(
    tmp_path: Path, locked_redis: RedisServer
) -> None:
    """Every Redis seam fails to reconnect (the password changed): whatever the
    process logs and ``/readyz`` answers, the password is not in it."""
    right = "the-right-one"
    url = f"redis://:{right}@127.0.0.1:{locked_redis.port}/0"
    server = Server(tmp_path / "a", "--redis", url).start()
    admin = redis.Redis(port=locked_redis.port, password=right)
    try:
        admin.config_set("requirepass", "changed")
        admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        deadline = time.monotonic() + 10
        answers = []
        while time.monotonic() < deadline:
            r = httpx.get(f"{server.url}/readyz", timeout=5)
            answers.append(r.text)
            if r.status_code == 503 and "redis pub/sub lost" in server.log.read_text():
                break
            time.sleep(0.2)
        assert any('"unavailable"' in a for a in answers), answers
        server.stop()
        logged = server.log.read_text()
        assert "redis pub/sub lost" in logged, logged[-2000:]
        assert right not in logged, logged[-2000:]
        assert not any(right in a for a in answers), answers
    finally:
        admin.close()
        server.stop()
        locked_redis.stop()
