"""Presence of the embedded backend: counted entries in this process's memory."""

from __future__ import annotations

from .types import JSON


class MemoryPresence:
    def __init__(self) -> None:
        self._keys: dict[str, dict[str, tuple[int, JSON]]] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._keys.clear()

    async def add(self, key: str, member: str, info: JSON) -> None:
        entries = self._keys.setdefault(key, {})
        refs, _ = entries.get(member, (0, {}))
        entries[member] = (refs + 1, info)

    async def remove(self, key: str, member: str) -> None:
        entries = self._keys.get(key)
        if entries is None or member not in entries:
            return
        refs, info = entries[member]
        if refs > 1:
            entries[member] = (refs - 1, info)
            return
        del entries[member]
        if not entries:
            del self._keys[key]

    async def drop(self, key: str, member: str) -> None:
        entries = self._keys.get(key)
        if entries is not None:
            entries.pop(member, None)
            if not entries:
                del self._keys[key]

    async def update(self, key: str, member: str, info: JSON) -> None:
        entries = self._keys.get(key)
        if entries is not None and member in entries:
            entries[member] = (entries[member][0], info)

    async def members(self, key: str) -> dict[str, JSON]:
        return {m: info for m, (_, info) in self._keys.get(key, {}).items()}

    async def count(self, key: str) -> int:
        return len(self._keys.get(key, {}))
