"""Webhook signatures: the server's ``Chatserver-Signature`` and the verification
recipes of docs/integrations.md (Python run here, Node run with ``node``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chatserver.webhooks import signing

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
SECRET = "whsec_" + "ab" * 32
BODY = json.dumps({"id": "wh_1.c_1.3", "type": "message.created", "text": "ñ €"}).encode()


def recipe(language: str) -> str:
    """The code block after ``<!-- recipe: <language> -->`` in docs/integrations.md."""
    found = re.search(rf"<!-- recipe: {language} -->\s*```\w+\n(.*?)```", DOC.read_text(), re.S)
    assert found, f"no {language} recipe in {DOC}"
    return found.group(1)


def python_verify() -> Callable[..., bool]:
    scope: dict[str, Any] = {}
    exec(recipe("python"), scope)  # the documented code, as a reader would paste it
    verify: Callable[..., bool] = scope["verify"]
    return verify


def cases() -> list[tuple[str, str, bytes, bool]]:
    """(secret, header, body, expected) for a fresh signature and what must fail."""
    t = int(time.time())
    good = signing.signature(SECRET, t, BODY)
    return [
        (SECRET, good, BODY, True),
        (SECRET, signing.signature(SECRET, t - 250, BODY), BODY, True),  # inside the window
        (SECRET, good, BODY + b" ", False),  # body changed
        ("whsec_" + "cd" * 32, good, BODY, False),  # another endpoint's secret
        (SECRET, signing.signature(SECRET, t - 301, BODY), BODY, False),  # too old: replay
        (SECRET, signing.signature(SECRET, t + 400, BODY), BODY, False),  # from the future
        (SECRET, good.replace(f"t={t}", f"t={t + 1}"), BODY, False),  # timestamp moved
        (SECRET, good.split(",")[1], BODY, False),  # no timestamp
        (SECRET, f"t={t},v1=zz", BODY, False),
        (SECRET, "", BODY, False),
    ]


def test_the_server_signs_as_documented() -> None:
    header = signing.signature(SECRET, 1_700_000_000, b"{}")
    assert re.fullmatch(r"t=1700000000,v1=[0-9a-f]{64}", header)
    assert signing.new_secret().startswith("whsec_") and len(signing.new_secret()) == 70
    assert signing.new_secret() != signing.new_secret()


@pytest.mark.parametrize("case", range(len(cases())))
def test_the_python_recipe_and_the_servers_verify_agree(case: int) -> None:
    secret, header, body, expected = cases()[case]
    assert python_verify()(secret, header, body) is expected
    assert signing.verify(secret, header, body, time.time()) is expected


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
def test_the_node_recipe_verifies_the_same(tmp_path: Path) -> None:
    module = tmp_path / "verify.js"
    module.write_text(recipe("node"))
    runner = tmp_path / "run.js"
    runner.write_text(
        "const { verify } = require('./verify.js');\n"
        "const cases = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));\n"
        "console.log(JSON.stringify(cases.map(([s, h, b]) =>"
        " verify(s, h, Buffer.from(b, 'base64')))));\n"
    )
    import base64

    all_cases = cases()
    given = [[s, h, base64.b64encode(b).decode()] for s, h, b, _ in all_cases]
    out = subprocess.run(
        ["node", str(runner)],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(out.stdout) == [expected for *_, expected in all_cases]
