"""docs/integrations.md's curl recipes, run as written against a real server.

The ``sh`` blocks of "Recipes with curl" (but the one that sets the
variables, which the test sets instead) run in one bash, in order, with
real curl and jq, against a server with a queued chat, an online agent and
a visitor on a real WebSocket; the test then checks what they did.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from ..conftest import Client, Server, seed
from .test_api import MANUAL, make_key

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_clients")]

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def recipes() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"^## REST API$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, "docs/integrations.md has no '## REST API' section"
    part = match.group(1).split("### Recipes with curl", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", part, re.S)
    assert len(blocks) >= 6
    return [b for b in blocks if "export " not in b]


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl, jq")
async def test_the_curl_recipes_work_as_written(server: Server) -> None:
    shop = await seed(server.data, settings=MANUAL)
    (email,) = shop.agents
    agent_id = shop.agents[email]
    agent = await Client.agent(server, email)
    visitor = await Client.visitor(server, shop.key)
    for url in ("https://shop.test/", "https://shop.test/order/1042"):
        assert (await visitor.request({"t": "page", "url": url}))["t"] == "ok"
    conv = (await visitor.request({"t": "send", "cid": "m1", "body": "Where is my order?"}))["conv"]
    key = await make_key(server, shop.site.id)
    # The archive index takes the new chat a batch at a time (0.25 s).
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
        for _ in range(40):
            listed = await http.get(f"{server.url}/api/v1/conversations?state=queued")
            if listed.json()["conversations"]:
                break
            await asyncio.sleep(0.05)
    env = {**os.environ, "CHATSERVER": server.url, "API_KEY": key, "AGENT": agent_id}
    script = "set -euo pipefail\n" + "\n".join(recipes())
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        script,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    output = out.decode()
    assert proc.returncode == 0, (output, err.decode())
    lines = output.splitlines()
    assert lines[0] == conv  # the queue
    # The answer reached the visitor live, once; the note never did.
    await visitor.expect("msg", lambda f: f.get("body") == "Your order ships today.")
    await agent.expect("msg", lambda f: f.get("body") == "Answered by the CRM")
    closed = await visitor.expect("msg", lambda f: (f.get("data") or {}).get("event") == "closed")
    assert closed["data"]["by"]["kind"] == "integration"
    bodies = [f.get("body") for f in visitor.of("msg", conv)]
    assert bodies.count("Your order ships today.") == 1 and "Answered by the CRM" not in bodies
    # The entries, one JSON line each, in offset order; the pages; the error.
    entries = [json.loads(line) for line in lines if line.startswith('{"offset"')]
    assert [e["offset"] for e in entries] == list(range(1, len(entries) + 1))
    assert {"offset": 1, "kind": "text", "from": "visitor", "body": "Where is my order?"} in entries
    assert "https://shop.test/order/1042" in lines and "https://shop.test/" in lines
    assert '["order-status"]' in lines and "closed" in lines
    assert lines[1].startswith(f'{{"id":"{conv}","state":"active"')
    assert json.loads(lines[2])["duplicate"] is False
    error = json.loads(lines[-1])
    assert error["error"]["code"] == 205 and error["error"]["name"] == "not_found"
