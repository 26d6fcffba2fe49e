"""Frame links: the same frame dicts over each server's wire format.

The chat clients (``bench.chat``) speak in frame dicts such as
``{"t": "send", "id": 3, "cid": ..., "body": ...}`` and receive dicts such as
``{"t": "msg", ...}``.  A link turns those into bytes for one server kind:

* ``MsgpackLink``: one msgpack map per binary WebSocket message; used for
  chatserver (subprotocol ``chatserver.msgpack``) and the bare websockets relay.
* ``SocketIOLink``: Engine.IO v4 / Socket.IO v5 text packets on the websocket
  transport, as the official JavaScript client sends them.  A frame
  ``{"t": "send", "id": 3, ...}`` becomes the event ``42 3["send", {...}]``
  with a Socket.IO acknowledgement id; the server's ack ``43 3[{...}]`` comes
  back as the reply dict with ``re`` set.  Server events ``42["msg", {...}]``
  become ``{"t": "msg", ...}``.  Engine.IO pings (``2``) are answered (``3``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import msgpack

from .wsclient import WSClient

FrameHandler = Callable[[dict[str, Any], float], None]
CloseHandler = Callable[[int | None], None]

_packb = msgpack.Packer(use_bin_type=True).pack
_unpackb = msgpack.unpackb


class Link:
    """A connection that sends and receives frame dicts."""

    ws: WSClient
    on_frame: FrameHandler | None = None
    on_close: CloseHandler | None = None

    def send(self, frame: dict[str, Any]) -> None:
        raise NotImplementedError

    def _closed(self, code: int | None) -> None:
        if self.on_close is not None:
            self.on_close(code)

    # Convenience passthroughs.
    @property
    def open(self) -> bool:
        return self.ws.open

    def abort(self) -> None:
        self.ws.abort()

    def close(self) -> None:
        self.ws.close()


class MsgpackLink(Link):
    __slots__ = ("on_close", "on_frame", "ws")

    def __init__(self, ws: WSClient) -> None:
        self.ws = ws
        self.on_frame = None
        self.on_close = None
        ws.on_message = self._message
        ws.on_close = self._closed

    @classmethod
    async def connect(cls, url: str, subprotocol: str | None, **kw: Any) -> MsgpackLink:
        ws = await WSClient.connect(url, [subprotocol] if subprotocol else None, **kw)
        return cls(ws)

    def _message(self, data: bytes, is_text: bool, now: float) -> None:
        frame = json.loads(data) if is_text else _unpackb(data)
        if self.on_frame is not None:
            self.on_frame(frame, now)

    def send(self, frame: dict[str, Any]) -> None:
        self.ws.send_bytes(_packb(frame))


class SocketIOLink(Link):
    """Socket.IO client on the websocket transport (no HTTP long-polling)."""

    __slots__ = ("on_close", "on_frame", "ws")

    def __init__(self, ws: WSClient) -> None:
        self.ws = ws
        self.on_frame = None
        self.on_close = None
        ws.on_close = self._closed

    @classmethod
    async def connect(cls, url: str, subprotocol: str | None = None, **kw: Any) -> SocketIOLink:
        """``url`` is the server's base ``ws://host:port``; does the Socket.IO connect."""
        import asyncio

        parts = urlsplit(url)
        eio_url = f"ws://{parts.netloc}/socket.io/?EIO=4&transport=websocket"
        ws = await WSClient.connect(eio_url, **kw)
        link = cls(ws)
        connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def handshake(data: bytes, is_text: bool, now: float) -> None:
            text = data.decode()
            if text.startswith("0"):  # Engine.IO open: join the default namespace
                ws.send_text("40")
            elif text.startswith("40"):
                ws.on_message = link._message
                if not connected.done():
                    connected.set_result(None)
            elif text.startswith("44") and not connected.done():
                connected.set_exception(ConnectionError(f"socket.io refused: {text}"))

        ws.on_message = handshake
        try:
            await asyncio.wait_for(connected, kw.get("timeout", 15.0))
        except BaseException:
            ws.abort()
            raise
        return link

    def _message(self, data: bytes, is_text: bool, now: float) -> None:
        text = data.decode()
        kind = text[:2]
        if kind == "42":  # event: 42["name", {...}]
            name, payload = json.loads(text[2:])
            payload["t"] = name
            if self.on_frame is not None:
                self.on_frame(payload, now)
        elif kind == "43":  # ack: 43<id>[{...}]
            i = 2
            while text[i].isdigit():
                i += 1
            payload = json.loads(text[i:])[0]
            payload["re"] = int(text[2:i])
            if self.on_frame is not None:
                self.on_frame(payload, now)
        elif text == "2":  # Engine.IO ping
            self.ws.send_text("3")

    def send(self, frame: dict[str, Any]) -> None:
        data = dict(frame)
        name = data.pop("t")
        rid = data.pop("id", None)
        body = json.dumps([name, data], separators=(",", ":"))
        self.ws.send_text(f"42{rid}{body}" if rid is not None else f"42{body}")
