"""docs/protocol.md keeps up with the code (plain file checks, no server).

* every ``ErrorCode`` and ``CloseCode`` has a table row with its number and
  its lowercase name, and every code row in the doc names a code that exists;
* every client frame type (``VISITOR_FRAMES``, ``AGENT_FRAMES``) is documented
  in the "Client frames" section, and every server frame type the code builds
  (found by regex in ``chatserver/**/*.py`` and ``recordings/**/*.py``) in the
  "Server frames" section, as a heading or a row of the section's overview
  table whose first cell is the type in backticks;
* the server frames the code builds are the ones ``chatserver/protocol/wire.py``
  declares, and each declared frame's keys are its subsection's field table
  (the table headed ``Field``; first cells in backticks), both ways; likewise
  the nested shapes with a section of their own (conversation object, site
  settings, the welcome's ``limits``);
* every wire limit of ``chatserver.frames`` and every ``Limits()`` default
  appears in the "Limits" section;
* README.md links to docs/protocol.md (skipped while there is no README.md).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from chatserver.errors import CloseCode, ErrorCode
from chatserver.protocol import frames, shapes, wire

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "protocol.md"
README = ROOT / "README.md"
SOURCES = sorted([*(ROOT / "chatserver").rglob("*.py"), *(ROOT / "recordings").rglob("*.py")])

# A server frame literal: {"t": "ack", ...} or frame["t"] = "msg".
SERVER_FRAME = re.compile(r'"t"\s*:\s*"([a-z_]+)"|\[\s*"t"\s*\]\s*=(?!=)\s*"([a-z_]+)"')
# A code row of the error or close code tables: | `208` | `too_long` | ...
CODE_ROW = re.compile(r"^\|\s*`(\d{3,4})`\s*\|\s*`([a-z_]+)`\s*\|")


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of the ``## N. <title>`` section, up to the next ``## `` heading."""
    match = re.search(rf"^## \d+\. {re.escape(title)}\s*$(.*?)(?=^## |\Z)", doc_text(), re.M | re.S)
    assert match is not None, f"docs/protocol.md has no '## N. {title}' section"
    return match.group(1)


def table_rows(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.lstrip().startswith("|")]


def documented(name: str, text: str) -> bool:
    """``name`` in backticks in a heading of ``text``, or as the first cell of a
    row of the overview table before its first subsection (not of a field table).
    """
    tick = f"`{name}`"
    if any(line.startswith("#") and tick in line for line in text.splitlines()):
        return True
    overview = text.split("\n### ", 1)[0]
    for row in table_rows(overview):
        cells = row.split("|")
        if len(cells) > 2 and cells[1].strip() == tick:
            return True
    return False


def server_frame_types() -> set[str]:
    found: set[str] = set()
    for path in SOURCES:
        for match in SERVER_FRAME.finditer(path.read_text(encoding="utf-8")):
            found.add(match.group(1) or match.group(2))
    return found


def number_pattern(value: float) -> re.Pattern[str]:
    """A whole-token match of ``value``: ``20.0`` is written ``20``, ``0.1`` as is."""
    text = str(int(value)) if float(value).is_integer() else repr(value)
    return re.compile(rf"(?<![\d.]){re.escape(text)}(?![\d]|\.\d)")


@pytest.mark.parametrize("code", [*ErrorCode, *CloseCode], ids=lambda c: f"{c.value}")
def test_every_code_has_a_row(code: ErrorCode | CloseCode) -> None:
    number, name = f"`{code.value}`", f"`{code.name.lower()}`"
    rows = [row for row in table_rows(doc_text()) if number in row and name in row]
    assert rows, f"no table row in docs/protocol.md with {number} and {name}"


def test_every_code_row_names_a_real_code() -> None:
    known = {(c.value, c.name.lower()) for c in [*ErrorCode, *CloseCode]}
    stale = [
        row
        for row in table_rows(doc_text())
        if (m := CODE_ROW.match(row)) and (int(m.group(1)), m.group(2)) not in known
    ]
    assert not stale, f"docs/protocol.md documents codes the code no longer has: {stale}"


def test_client_frames_documented() -> None:
    text = section("Client frames")
    types = set(frames.VISITOR_FRAMES) | set(frames.AGENT_FRAMES)
    missing = sorted(t for t in types if not documented(t, text))
    assert not missing, f"client frame types missing from 'Client frames': {missing}"


def test_server_frames_found_in_source() -> None:
    # The regex must keep finding the frames; a refactor that hides them fails here.
    assert {"welcome", "ack", "msg", "conv", "error", "agents"} <= server_frame_types()


def test_server_frames_documented() -> None:
    text = section("Server frames")
    missing = sorted(t for t in server_frame_types() if not documented(t, text))
    assert not missing, f"server frame types missing from 'Server frames': {missing}"


def test_server_frames_declared() -> None:
    built = server_frame_types()
    undeclared = sorted(built - set(wire.SERVER_FRAMES))
    assert not undeclared, f"frame types built but not in wire.SERVER_FRAMES: {undeclared}"
    unused = sorted(set(wire.SERVER_FRAMES) - built)
    assert not unused, f"wire.SERVER_FRAMES declares types the code never builds: {unused}"


def subsection(text: str, heading: str) -> str:
    """The ``### `` subsection of ``text`` whose heading contains ``heading``."""
    parts = re.split(r"^(?=### )", text, flags=re.M)
    found = [p for p in parts if p.startswith("### ") and heading in p.splitlines()[0]]
    assert len(found) == 1, f"{len(found)} subsections with {heading!r} in their heading"
    return found[0]


def table_keys(text: str, header: str) -> set[str]:
    """The first cells (in backticks) of the tables of ``text`` headed ``| <header> |``."""
    keys: set[str] = set()
    inside = False
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().split("|")]
        if len(cells) < 3:
            inside = False
            continue
        if inside and (m := re.fullmatch(r"`([a-z_]+)`", cells[1])):
            keys.add(m.group(1))
        elif not set(cells[1]) <= set("-: "):
            inside = cells[1] == header
    return keys


def declared(shapes: tuple[type, ...]) -> set[str]:
    return {key for shape in shapes for key in wire.fields(shape)}


def frame_docs() -> list[tuple[str, str, str, tuple[type, ...]]]:
    """(section, heading, table header, shapes): where each declaration is documented."""
    server = section("Server frames")
    places: dict[str, list[str]] = {}
    for ftype in wire.SERVER_FRAMES:
        if ftype == "welcome":
            continue
        heading = subsection(server, f"`{ftype}`").splitlines()[0]
        places.setdefault(heading, []).append(ftype)
    return [
        ("Connection lifecycle", "`welcome` (visitor)", "Field", (wire.VisitorWelcome,)),
        ("Connection lifecycle", "`welcome` (agent)", "Field", (wire.AgentWelcome,)),
        ("Connection lifecycle", "`welcome` (visitor)", "Key", (shapes.WireLimits,)),
        ("Server frames", "Conversation object", "Field", (shapes.ConversationObject,)),
        ("Server frames", "Site settings", "Key", (shapes.SiteSettings,)),
    ] + [
        (
            "Server frames",
            heading.removeprefix("### "),
            "Field",
            tuple(s for t in types for s in wire.SERVER_FRAMES[t]),
        )
        for heading, types in places.items()
    ]


@pytest.mark.parametrize(
    ("title", "heading", "header", "shapes"),
    [pytest.param(*place, id=f"{place[1]} {place[2]}") for place in frame_docs()],
)
def test_frame_fields_documented(
    title: str, heading: str, header: str, shapes: tuple[type, ...]
) -> None:
    documented_keys = table_keys(subsection(section(title), heading), header)
    keys = declared(shapes)
    assert not keys - documented_keys, (
        f"{heading}: keys of {[s.__name__ for s in shapes]} missing from its "
        f"'| {header} |' table: {sorted(keys - documented_keys)}"
    )
    assert not documented_keys - keys, (
        f"{heading}: its '| {header} |' table documents keys that "
        f"{[s.__name__ for s in shapes]} does not declare: {sorted(documented_keys - keys)}"
    )


def test_field_tables_are_read() -> None:
    # The table reader must keep finding rows: a format change that hides them fails here.
    ack = table_keys(subsection(section("Server frames"), "`ack`"), "Field")
    assert {"t", "re", "cid", "conv", "offset", "ts", "duplicate"} <= ack
    assert table_keys(
        "| Key | Type |\n|---|---|\n| `a` | x |\n\n| Field |\n|---|\n| `b` |", "Field"
    ) == {"b"}


WIRE_LIMITS = [
    "MAX_FRAME_BYTES",
    "MAX_MESSAGE_CHARS",
    "MAX_PREVIEW_CHARS",
    "MAX_ID_CHARS",
    "MAX_HISTORY",
    "MAX_URL_CHARS",
    "MAX_TITLE_CHARS",
    "MAX_NAME_CHARS",
    "MAX_EMAIL_CHARS",
    "MAX_ATTRS",
    "MAX_ATTR_KEY_CHARS",
    "MAX_ATTR_VALUE_CHARS",
    "MAX_ATTRS_BYTES",
    "MAX_USER_ID_CHARS",
    "MAX_HASH_CHARS",
    "MAX_COMMENT_CHARS",
    "MAX_EVENT_NAME_CHARS",
    "MAX_TAG_CHARS",
    "MAX_TAGS_PER_FRAME",
    "MAX_TAGS",
    "MAX_VIEWING",
]
# Every default of Limits(), not only the listed ones: a new limit needs docs too.
LIMIT_DEFAULTS = {
    field.name: getattr(frames.Limits(), field.name) for field in dataclasses.fields(frames.Limits)
}


@pytest.mark.parametrize(
    ("name", "value"),
    [(n, getattr(frames, n)) for n in WIRE_LIMITS] + sorted(LIMIT_DEFAULTS.items()),
)
def test_limit_documented(name: str, value: float) -> None:
    assert number_pattern(value).search(section("Limits")), (
        f"{name} = {value} does not appear in the 'Limits' section of docs/protocol.md"
    )


def test_limit_defaults_cover_the_listed_ones() -> None:
    listed = {
        "recovery_window",
        "rate_per_second",
        "rate_burst",
        "max_errors",
        "hello_timeout",
        "max_outbox_bytes",
    }
    assert listed <= set(LIMIT_DEFAULTS)


def test_readme_links_to_protocol() -> None:
    if not README.exists():
        pytest.skip("README.md does not exist yet")
    text = README.read_text(encoding="utf-8")
    link = re.compile(r"(\]\(\s*<?|^\[[^\]]+\]:\s*<?)(\./)?docs/protocol\.md(#[^)\s>]*)?", re.M)
    assert link.search(text), "README.md does not link to docs/protocol.md"
