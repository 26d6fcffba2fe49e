"""Signed conversation references: how an e-mailed answer finds its conversation.

A mail that may be answered carries ``<conversation id>.<signature>``, the
signature an HMAC-SHA256 of the id with the server secret
(``security.Signer``, purpose ``mailref``), in its ``Message-ID`` (which mail
programs copy into the answer's ``In-Reply-To`` and ``References``) and, when
the site has a reply address, in the ``Reply-To`` as
``local+<reference>@domain``.  ``find`` takes any text an answer carries
(headers, recipients) and returns the conversation of the first reference
whose signature is right: a reference cannot be made up or moved to another
conversation without the secret.
"""

from __future__ import annotations

import re

from ..security import Signer
from ..types import ConversationId

PURPOSE = "mailref"
# c_<4-40 url-safe characters>.<32 url-safe characters of signature> (types.sorted_id: 19)
_REF = re.compile(r"(c_[A-Za-z0-9_-]{4,40})\.([A-Za-z0-9_-]{32})(?![A-Za-z0-9_-])")


def sign(signer: Signer, conv_id: ConversationId) -> str:
    """The reference of ``conv_id``: ``<id>.<signature>``."""
    return signer.sign(PURPOSE, conv_id)[len(PURPOSE) + 1 :]


def verify(signer: Signer, ref: str) -> ConversationId | None:
    """The conversation of a well-signed reference, else ``None``."""
    fields = signer.verify(PURPOSE, f"{PURPOSE}.{ref}")
    return ConversationId(fields[0]) if fields and len(fields) == 1 else None


def candidates(text: str) -> list[str]:
    """Every string in ``text`` shaped like a reference, in order."""
    return [f"{m.group(1)}.{m.group(2)}" for m in _REF.finditer(text)]


def find(signer: Signer, *texts: str) -> tuple[ConversationId | None, bool]:
    """The conversation of the first valid reference in ``texts``, and whether any
    reference-shaped string was seen at all (a forged one, if none was valid)."""
    seen = False
    for text in texts:
        for ref in candidates(text):
            seen = True
            conv = verify(signer, ref)
            if conv is not None:
                return conv, True
    return None, seen
