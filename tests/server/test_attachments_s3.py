"""Attachments on S3: a real server process with ``--blobs s3://...`` on SeaweedFS.

An upload becomes an object; the download goes through the app (with its
security headers: docs/storage.md says why not a redirect to a presigned
URL); the secret key never shows in the server's log or its errors.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from chatserver.blobs_s3 import S3Blobs, S3Settings

from ..conftest import ROOT, Client, Server, seed
from ..s3_server import S3Server

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


def s3_args(settings: dict[str, str]) -> list[str]:
    return [
        "--blobs",
        settings["url"],
        "--s3-endpoint",
        settings["endpoint"],
        "--s3-region",
        settings["region"],
        "--s3-access-key",
        settings["access_key"],
    ]


async def test_upload_and_download_through_s3(
    s3_server: S3Server, s3_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = s3_server.settings(s3_prefix)
    monkeypatch.setenv("CHATSERVER_S3_SECRET_KEY", settings["secret_key"])
    data = tmp_path / "server"
    shop = await seed(data)
    server = Server(data, *s3_args(settings), "--log-level", "info").start()
    try:
        visitor = await Client.visitor(server, shop.key)
        try:
            async with httpx.AsyncClient(base_url=server.url) as http:
                up = await http.post(
                    "/api/attachments",
                    params={"name": "photo.png"},
                    content=PNG,
                    headers={"Authorization": f"Bearer {visitor.welcome['token']}"},
                )
                assert up.status_code == 200, up.text
                att = up.json()
                # The bytes are an object in the bucket, not a file on the disk.
                objects = S3Blobs(S3Settings(**settings))
                key = f"attachments/{shop.site.id}/{att['id']}"
                assert await objects.read(key) == PNG
                assert not (data / "blobs").exists()

                got = await http.get(f"/{att['url']}")
                assert got.status_code == 200
                assert got.content == PNG
                assert got.headers["content-type"] == "image/png"
                assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
                assert got.headers["x-content-type-options"] == "nosniff"

                # Gone from the bucket (a sweep, or by hand): 404, not an error.
                assert await objects.delete(key)
                assert (await http.get(f"/{att['url']}")).status_code == 404
        finally:
            await visitor.close()
    finally:
        server.stop()
    assert settings["secret_key"] not in server.log.read_text()


def test_serve_refuses_a_bucket_it_cannot_use(
    s3_server: S3Server, s3_prefix: str, tmp_path: Path
) -> None:
    settings = s3_server.settings(s3_prefix)
    wrong = "wrong-secret-that-must-not-be-printed"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatserver.cli",
            "serve",
            "--data",
            str(tmp_path),
            *s3_args(settings),
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "CHATSERVER_S3_SECRET_KEY": wrong},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "cannot use the blob store s3://" in proc.stderr
    assert wrong not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--blobs", "s3://Bad_Bucket/x"], "not a valid bucket name"),
        (["--blobs", "s3://bucket/x", "--s3-endpoint", "ftp://host"], "endpoint must be"),
        (["--blobs", "s3://bucket/x", "--s3-access-key", "id"], "both"),
    ],
)
def test_bad_s3_options_are_refused_clearly(args: list[str], message: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "chatserver.cli", "serve", "--data", str(tmp_path), *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert message in proc.stderr
