"""Outgoing webhook requests, with no way into the shop's own network (SSRF).

``post`` resolves the host itself and refuses any address that is not
globally routable (loopback, private, link-local, shared, multicast,
reserved, unspecified; IPv4-mapped IPv6 is checked as IPv4) unless the
endpoint or the server allows private addresses.  It then connects to the
address it checked, not to the name (the request carries the name in
``Host`` and, over TLS, in SNI, and the certificate is verified against the
name), so a DNS answer that changes between the check and the connection
(DNS rebinding) cannot slip past.  Redirects are not followed, proxies from
the environment are not used, the whole request is bounded by ``timeout``
seconds and at most ``max_response`` bytes of the answer are read.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import OrderedDict
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL may not be requested (scheme, or an address that is not public)."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes  # at most ``max_response`` bytes


def is_public(ip: IPAddress) -> bool:
    """Globally routable unicast (an IPv4-mapped IPv6 address is judged as IPv4)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str) -> httpx.URL:
    """The parsed URL if it is an absolute http(s) URL with a host; ``Refused`` otherwise."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise Refused(f"not a URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise Refused("only http:// and https:// URLs with a host")
    if parsed.userinfo:
        raise Refused("no credentials in the URL")
    return parsed


async def resolve(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to; ``Refused`` if any address of ``host`` is not public."""
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise Refused(f"cannot resolve {host}: {exc}") from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(i[4][0]) for i in infos))
    if not addresses:
        raise Refused(f"{host} has no address")
    if not allow_private:
        for ip in addresses:
            if not is_public(ip):
                raise Refused(f"{host} is a private or local address ({ip}); not allowed")
    return str(addresses[0])


class WebhookClient:
    """Pooled connections, one pool per (scheme, name, address, port): a connection
    is never reused for another host name (its TLS session names one)."""

    POOLS = 64

    def __init__(self, timeout: float, max_response: int) -> None:
        self.timeout = timeout
        self.max_response = max_response
        self._pools: OrderedDict[tuple[str, str, str, int], httpx.AsyncClient] = OrderedDict()

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.aclose()

    async def _pool(self, key: tuple[str, str, str, int]) -> httpx.AsyncClient:
        pool = self._pools.get(key)
        if pool is None:
            pool = httpx.AsyncClient(
                trust_env=False,
                follow_redirects=False,
                timeout=self.timeout,
                limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
            )
            self._pools[key] = pool
            while len(self._pools) > self.POOLS:
                _, old = self._pools.popitem(last=False)
                await old.aclose()
        else:
            self._pools.move_to_end(key)
        return pool

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], *, allow_private: bool
    ) -> Reply:
        """POST ``body`` to ``url`` (see the module docstring); raises ``Refused``,
        ``TimeoutError`` or ``httpx.HTTPError``."""
        async with asyncio.timeout(self.timeout):
            parsed = check_url(url)
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            address = await resolve(parsed.host, port, allow_private)
            target = parsed.copy_with(host=address, port=port)
            host_header = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
            if ":" in parsed.host:  # an IPv6 literal
                host_header = f"[{parsed.host}]" + (f":{parsed.port}" if parsed.port else "")
            extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
            pool = await self._pool((parsed.scheme, parsed.host, address, port))
            request = pool.build_request(
                "POST",
                target,
                content=body,
                headers={**headers, "Host": host_header},
                extensions=extensions,
            )
            response = await pool.send(request, stream=True)
            try:
                data = bytearray()
                async for chunk in response.aiter_raw():
                    data += chunk[: self.max_response - len(data)]
                    if len(data) >= self.max_response:
                        break
            finally:
                await response.aclose()
            return Reply(response.status_code, bytes(data))
