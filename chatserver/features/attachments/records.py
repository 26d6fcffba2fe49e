"""What a stored attachment is: its accepted types, its name, its signed URL.

The type is found from the first bytes (``sniff``), never from what the
client says; the name is made safe to store and show (``safe_name``); the
URL that entries carry is signed with the server secret and expires
(``signed_url``, ``url_valid``, ``with_url``).  Pure functions, no I/O.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata

from ...security import Signer
from ...types import JSON

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # 10 MiB
URL_TTL = 24 * 3600  # seconds a signed URL is valid at least (then rounded up to the hour)
MAX_NAME_CHARS = 200  # the stored file name

# content type -> file name extension; the first bytes decide (``sniff``)
TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
}
_EXTENSIONS = {"image/jpeg": (".jpg", ".jpeg")}


def sniff(head: bytes) -> str | None:
    """The content type that the first bytes of a file prove, or ``None``."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/<>:|?*]+')


def safe_name(name: str, content_type: str) -> str:
    """A file name fit to store and show: no folders, no control or quoting
    characters, at most ``MAX_NAME_CHARS``, ending in the type's extension
    (so a PDF never downloads as ``.html``)."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .") or "file"
    ext = TYPES[content_type]
    if not name.lower().endswith(_EXTENSIONS.get(content_type, (ext,))):
        name += ext
    if len(name) > MAX_NAME_CHARS:
        stem, dot, suffix = name.rpartition(".")
        name = stem[: MAX_NAME_CHARS - len(suffix) - 1] + dot + suffix
    return name


# -- signed URLs -----------------------------------------------------------


def signed_url(signer: Signer, attachment_id: str, now: float | None = None) -> str:
    """``attachments/<id>?exp=..&sig=..``, relative to the server's base URL."""
    at = time.time() if now is None else now
    exp = math.ceil((at + URL_TTL) / 3600) * 3600
    sig = signer.sign("att", attachment_id, str(exp)).rpartition(".")[2]
    return f"attachments/{attachment_id}?exp={exp}&sig={sig}"


def url_valid(signer: Signer, attachment_id: str, exp: str, sig: str, now: float) -> bool:
    """The signature is ours and the URL has not expired."""
    if not exp.isdigit() or "." in attachment_id or "." in sig:
        return False
    fields = signer.verify("att", f"att.{attachment_id}.{exp}.{sig}")
    return fields == [attachment_id, exp] and int(exp) > now


def with_url(frame: JSON, signer: Signer) -> JSON:
    """An entry's wire form with ``data.attachment.url`` signed now (else as is)."""
    data = frame.get("data")
    if not data or not isinstance(data.get("attachment"), dict):
        return frame
    att = data["attachment"]
    signed = {**att, "url": signed_url(signer, str(att.get("id", "")))}
    return {**frame, "data": {**data, "attachment": signed}}
