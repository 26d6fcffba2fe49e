"""The ``--webhook-*`` and ``--outbox-*`` options and their environment twins."""

from __future__ import annotations

import pytest

from chatserver.cli.main import parser
from chatserver.cli.options import config_from
from chatserver.config import Config


def test_defaults_are_the_documented_ones() -> None:
    hooks = config_from(parser().parse_args(["serve"])).webhooks
    assert hooks == Config().webhooks
    assert (hooks.timeout, hooks.max_response, hooks.allow_private) == (10.0, 65536, False)
    assert hooks.disable_after == 50
    assert (hooks.outbox.retry_base, hooks.outbox.give_up, hooks.outbox.lease) == (10, 86400, 60)


def test_options_and_their_environment_twins(monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["serve", "--webhook-timeout", "3", "--webhook-max-response", "1K"]
    args += ["--webhook-allow-private", "--webhook-disable-after", "7", "--outbox-lease", "1"]
    hooks = config_from(parser().parse_args(args)).webhooks
    assert (hooks.timeout, hooks.max_response, hooks.allow_private) == (3.0, 1024, True)
    assert hooks.disable_after == 7
    assert hooks.outbox.lease == 4.0  # never below the timeout and a second
    monkeypatch.setenv("CHATSERVER_WEBHOOK_TIMEOUT", "2.5")
    monkeypatch.setenv("CHATSERVER_WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("CHATSERVER_OUTBOX_GIVE_UP", "60")
    monkeypatch.setenv("CHATSERVER_OUTBOX_RETRY_BASE", "0.5")
    hooks = config_from(parser().parse_args(["serve"])).webhooks
    assert (hooks.timeout, hooks.allow_private) == (2.5, True)
    assert (hooks.outbox.give_up, hooks.outbox.retry_base) == (60.0, 0.5)


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_bad_duration_is_refused(value: str) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--webhook-timeout", value])
