"""Secrets out of messages and logs: how a URL holding a password is shown.

Every message, error and log line that names a connection URL (Redis now;
a database or an S3 endpoint later) shows ``redact_url(url)``: where it
points (scheme, user, host, port, path) without the password.

* userinfo ``user:password@`` becomes ``user:***@`` (``:password@``:
  ``:***@``); a user name alone (``user@``) stays, it is not a secret;
* query parameters whose name says secret (``password``, ``pass``, ``pwd``,
  ``secret``, ``token``, ``key``, ``sig``, ``signature``, ``credential``,
  ``auth``, in any case, also within a longer name such as
  ``X-Amz-Signature`` or ``access_key``) get the value ``***``;
* a string that does not parse as a URL is still cleaned of anything that
  looks like ``:password@``.

Error texts from client libraries may carry a URL or its password
(``str(exc)``); ``scrub`` replaces every secret ``protect`` was told about,
and ``install`` makes the logging machinery do the same for every record
(message and traceback), so no handler, formatter or library logger can
write one.  ``chatserver serve`` and the CLI protect their ``--redis`` URL.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

MASK = "***"
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|sig|credential|auth", re.IGNORECASE)
_USERINFO_PASSWORD = re.compile(r"(//[^/?#@:\s]*):[^/?#@\s]*@")
_secrets: set[str] = set()


def redact_url(url: str) -> str:
    """``url`` with its passwords (userinfo, secret query parameters) as ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        userinfo, at, hostport = netloc.rpartition("@")
        if at:
            user, colon, _ = userinfo.partition(":")
            netloc = f"{user}:{MASK}@{hostport}" if colon else f"{user}@{hostport}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, MASK if _SECRET_NAME.search(k) else v) for k, v in pairs], safe="*"
            )
        # Rebuilt by hand: urlunsplit drops the "//" of an empty host (unix:///path).
        head = f"{parts.scheme}:" if parts.scheme else ""
        if netloc or url[len(head) :].startswith("//"):
            head += f"//{netloc}"
        tail = (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
        return head + parts.path + tail
    except ValueError:
        return _USERINFO_PASSWORD.sub(rf"\1:{MASK}@", url)


def secrets_of(url: str) -> set[str]:
    """The secret strings in ``url``: its password and secret query values,
    as written and percent-decoded (empty strings left out)."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
        userinfo, at, _ = parts.netloc.rpartition("@")
        if at and ":" in userinfo:
            found.add(userinfo.partition(":")[2])
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if _SECRET_NAME.search(name):
                found.update((value, quote(value, safe="")))
    except ValueError:
        match = _USERINFO_PASSWORD.search(url)
        if match:
            found.add(url[match.end(1) + 1 : match.end() - 1])
    found |= {unquote(s) for s in found}
    return {s for s in found if s}


def protect(url: str | None) -> None:
    """Remember ``url``'s secrets: ``scrub`` and the logging guard remove them."""
    if url:
        _secrets.update(secrets_of(url))


def protect_value(secret: str | None) -> None:
    """Remember one secret given on its own (an S3 secret key), likewise."""
    if secret:
        _secrets.add(secret)


def scrub(text: str, *urls: str) -> str:
    """``text`` with ``urls`` redacted and every protected secret (and ``urls``'
    secrets) replaced by ``***``: for error texts that may quote a URL."""
    for url in urls:
        if url:
            text = text.replace(url, redact_url(url))
    for secret in sorted(_secrets.union(*(secrets_of(u) for u in urls if u)), key=len)[::-1]:
        text = text.replace(secret, MASK)
    return text


_previous_factory = logging.getLogRecordFactory()


def _record(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _previous_factory(*args, **kwargs)
    if not _secrets:
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it itself later
        return record
    clean = scrub(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info:
        text = logging.Formatter().formatException(record.exc_info)
        clean = scrub(text)
        if clean != text:  # the formatters use exc_text when exc_info is gone
            record.exc_info, record.exc_text = None, clean
    return record


def install() -> None:
    """Scrub protected secrets from every log record from now on (idempotent)."""
    if logging.getLogRecordFactory() is not _record:
        logging.setLogRecordFactory(_record)
