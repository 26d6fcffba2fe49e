"""Baseline 2: python-socketio on uvicorn, what a Python developer would otherwise pick.

An ``AsyncServer`` (ASGI mode, default JSON serializer, default
``async_handlers``) on uvicorn with the same WebSocket settings as chatserver.
Written the way the Socket.IO docs suggest: one event handler per frame type,
Socket.IO acknowledgements for replies (``hello`` → welcome, ``send`` → ack),
and a room per conversation (plus one for its agents) for the broadcasts.
The pairing itself is ``bench.pairing.Relay``, shared with the bare relay.

Run: ``python -m bench.baseline_sio --port 8766``.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import socketio
import uvicorn

from .pairing import JSON, Member, Out, Relay

sio = socketio.AsyncServer(async_mode="asgi", transports=["websocket"])
app = socketio.ASGIApp(sio)
relay = Relay()
members: dict[str, Member] = {}

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def event(handler: Handler) -> Handler:
    """``@sio.event`` (the handler for the event of its name), keeping its type:
    socketio has no type hints."""
    sio.on(handler.__name__, handler)
    return handler


async def _dispatch(out: Out, sid: str) -> JSON | None:
    """Send what the relay produced; return the reply to ``sid`` (its ack)."""
    reply = None
    for targets, frame in out:
        t = frame["t"]
        replies = ("welcome", "ack", "ok", "pong", "error")
        if t in replies and len(targets) == 1 and targets[0].handle == sid:
            reply = frame
            continue
        if t == "conv":
            conv_id = frame["conv"]["id"]
            for m in targets:
                await sio.enter_room(m.handle, conv_id)
                if m.kind == "agent":
                    await sio.enter_room(m.handle, f"{conv_id}/agents")
                await sio.emit("conv", frame, to=m.handle)
        elif t == "msg":
            await sio.emit("msg", frame, room=frame["conv"])
        elif t == "preview":
            await sio.emit("preview", frame, room=f"{frame['conv']}/agents")
        else:
            for m in targets:
                await sio.emit(t, frame, to=m.handle)
    return reply


@event
async def hello(sid: str, data: JSON) -> Any:
    member, out = relay.hello(sid, data)
    members[sid] = member
    return await _dispatch(out, sid)


@event
async def send(sid: str, data: JSON) -> Any:
    member = members.get(sid)
    if member is None:
        return {"t": "error", "code": 204}
    return await _dispatch(relay.send(member, data), sid)


@event
async def typing(sid: str, data: JSON) -> None:
    member = members.get(sid)
    if member is not None:
        await _dispatch(relay.typing(member, data), sid)


@event
async def join(sid: str, data: JSON) -> Any:
    member = members.get(sid)
    if member is None:
        return {"t": "error", "code": 204}
    return await _dispatch(relay.join(member, data), sid)


@event
async def ping(sid: str, data: JSON) -> Any:
    return {"t": "pong"}


@event
async def disconnect(sid: str, *args: Any) -> None:
    relay.gone(members.pop(sid, None))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8766)
    args = p.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        loop="asyncio",  # as chatserver; uvloop (the bench extra) is the generator's
        ws_per_message_deflate=False,
        ws_max_size=1024 * 1024,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        lifespan="off",
    )
