"""The admin forms' validation as pure functions (the pages are tested through a server)."""

from __future__ import annotations

import pytest

from agent_console.forms import agent_form, canned_form, department_name, parse_origin, site_form


@pytest.mark.parametrize(
    ("line", "origin"),
    [
        ("https://shop.example", "https://shop.example"),
        (" HTTPS://Shop.Example:443/ ", "https://shop.example"),
        ("http://localhost:80", "http://localhost"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("https://xn--caf-dma.example", "https://xn--caf-dma.example"),
        ("https://shop.example/path", None),
        ("https://shop.example/?", None),
        ("https://shop.example#top", None),
        ("https://user:pw@shop.example", None),
        ("ftp://shop.example", None),
        ("shop.example", None),
        ("https:shop.example", None),
        ("https://", None),
        ("https://shop.example:0", None),
        ("https://shop.example:65536", None),
        ("https://[::1", None),
        ("https://-bad.example", None),
        ("https://shop..example", None),
        ("https://café.example", None),
        ("*", None),
    ],
)
def test_origins(line: str, origin: str | None) -> None:
    assert parse_origin(line) == origin


def test_site_form_keeps_what_was_typed_and_cleans_what_is_valid() -> None:
    form = site_form(
        {
            "name": "  My   shop ",
            "origins": "https://a.example\n\nhttps://A.example/\nhttp://b.example:8080",
            "routing": "manual",
            "color": " #ABCDEF ",
            "greeting": " Hi!\r\nHow can we help? ",
            "language": "ca",
        }
    )
    assert form.ok, form.errors
    assert form.clean == {
        "name": "My shop",
        "origins": ("https://a.example", "http://b.example:8080"),
        "typing_preview": False,
        "cobrowse": False,
        "routing": "manual",
        "color": "#abcdef",
        "greeting": "Hi!\nHow can we help?",
        "language": "ca",
        "redact_patterns": (),
        "recording": False,
        "recording_sample": 1.0,
        "recording_consent": False,
        "recording_retention_days": 30,
        "rewind_seconds": 60,
    }
    bad = site_form({"origins": "https://a.example\nnope", "color": "#12345"})
    assert set(bad.errors) == {"name", "origins", "routing", "color", "language"}
    rec = site_form(
        {
            "recording": "on",
            "recording_sample": "25",
            "recording_consent": "on",
            "recording_retention_days": "90",
            "rewind_seconds": "0",
        }
    )
    assert rec.clean["rewind_seconds"] == 0
    assert (rec.clean["recording"], rec.clean["recording_sample"]) == (True, 0.25)
    assert (rec.clean["recording_consent"], rec.clean["recording_retention_days"]) == (True, 90)
    worse = site_form(
        {"recording_sample": "150", "recording_retention_days": "-3", "rewind_seconds": "601"}
    )
    assert {"recording_sample", "recording_retention_days", "rewind_seconds"} <= set(worse.errors)
    assert bad.errors["origins"].startswith("Line 2:")
    assert bad.values["origins"] == "https://a.example\nnope"


def test_canned_shortcuts() -> None:
    assert canned_form({"shortcut": " /Hello-World_2 ", "text": " Hi "}).clean == {
        "shortcut": "hello-world_2",
        "text": "Hi",
    }
    for shortcut in ("", "/", "two words", "ü", "x" * 33, "a.b"):
        assert "shortcut" in canned_form({"shortcut": shortcut, "text": "t"}).errors, shortcut
    assert canned_form({"shortcut": "x" * 32, "text": "t" * 4000}).ok
    assert "text" in canned_form({"shortcut": "x", "text": "t" * 4001}).errors


def test_department_names() -> None:
    existing = ("sales", "Support")
    assert department_name("  Returns   desk ", existing).clean == {"name": "Returns desk"}
    assert department_name("support", existing).errors  # taken, ignoring case
    assert department_name("Sales", existing, current="sales").clean == {"name": "Sales"}
    for name in ("", "a/b", "-x", "x" * 65, "<b>"):
        assert department_name(name, existing).errors, name


def test_agent_form() -> None:
    fields = {
        "name": "Ana",
        "email": "ana@shop.example",
        "password": "12345678",
        "role": "admin",
        "capacity": "50",
        "departments": "sales",
    }
    form = agent_form(fields, ("sales", "support"), new=True)
    assert form.ok and form.clean["departments"] == ("sales",) and form.clean["capacity"] == 50
    edit = agent_form({**fields, "password": "", "email": "bad"}, ("sales",), new=False)
    assert edit.ok and "email" not in edit.clean  # editing never changes email or password
    for capacity in ("0", "51", "", "1e3", "٣"):
        assert "capacity" in agent_form({**fields, "capacity": capacity}, (), new=True).errors


def test_redaction_patterns() -> None:
    base = {"name": "Shop", "routing": "auto", "color": "#abc", "language": "en"}
    ok = site_form({**base, "redact_patterns": " ES\\d{22} \n\n[A-Z]{3}-\\d{6}\nES\\d{22}"})
    assert ok.clean["redact_patterns"] == ("ES\\d{22}", "[A-Z]{3}-\\d{6}")
    for bad, why in (
        ("(unclosed", "not a regular expression"),
        ("x*", "empty text"),
        ("x" * 201, "200 characters"),
        ("\n".join(f"p{i}" for i in range(11)), "At most 10"),
    ):
        form = site_form({**base, "redact_patterns": bad})
        assert why in form.errors["redact_patterns"], (bad, form.errors)
        assert form.values["redact_patterns"] == bad  # kept as typed
