"""The webhook client's SSRF rules and the mapping of log entries to webhook events."""

from __future__ import annotations

import ipaddress

import pytest

from chatserver.types import AuthorKind, Entry, EntryKind
from chatserver.webhooks.client import Refused, check_url, is_public, resolve
from chatserver.webhooks.events import event_type

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # shared address space
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
        "ff02::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


async def test_resolve_refuses_private_hosts_unless_allowed() -> None:
    with pytest.raises(Refused, match="private or local"):
        await resolve("127.0.0.1", 80, allow_private=False)
    with pytest.raises(Refused, match="private or local"):
        await resolve("localhost", 80, allow_private=False)  # a name is resolved first
    assert await resolve("127.0.0.1", 80, allow_private=True) == "127.0.0.1"
    assert await resolve("::1", 80, allow_private=True) == "::1"


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "file:///etc/passwd", "http:///nohost", "https://u:p@example.com/", "x"],
)
def test_only_http_urls_with_a_host_and_no_credentials(url: str) -> None:
    with pytest.raises(Refused):
        check_url(url)


def entry(kind: EntryKind, author: AuthorKind, **data: object) -> Entry:
    return Entry("c_1", 3, kind, author, "x", "X", "hi", 1.0, None, dict(data))


def test_entries_map_to_webhook_events() -> None:
    visitor, agent, system = AuthorKind.VISITOR, AuthorKind.AGENT, AuthorKind.SYSTEM
    assert event_type(entry(EntryKind.TEXT, visitor)) == "message.created"
    assert event_type(entry(EntryKind.TEXT, agent)) == "message.created"
    assert event_type(entry(EntryKind.NOTE, agent)) == "note.created"
    offline = {"name": "Ana", "email": "ana@example.com"}
    assert event_type(entry(EntryKind.TEXT, visitor, offline=offline)) == "offline.message"
    auto = {"trigger": "t_1", "name": "Greet"}
    assert event_type(entry(EntryKind.TEXT, agent, auto=auto)) == "trigger.fired"
    for event, kind in [
        ("joined", "conversation.assigned"),
        ("transferred", "conversation.transferred"),
        ("closed", "conversation.closed"),
        ("rated", "conversation.rated"),
    ]:
        assert event_type(entry(EntryKind.EVENT, system, event=event)) == kind
    assert event_type(entry(EntryKind.EVENT, system, event="left")) is None
    assert event_type(entry(EntryKind.EVENT, system, event="cobrowse")) is None
