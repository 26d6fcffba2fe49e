"""The new part of an e-mailed answer: quoted history and signatures left out.

Mail programs put the message answered below (or above) the answer in many
ways; ``strip`` keeps the text before the first sign of quoted history:

* our own marker line (``MARKER``, in every language of the mails) that the
  mails sent to visitors carry at their top;
* an attribution line (``On <date>, <name> wrote:`` and its Catalan and
  Spanish forms, also broken over two lines as Gmail does);
* ``-----Original Message-----`` and Outlook's ``From: ...`` header block;
* lines quoted with ``>``;
* a signature after ``-- `` (RFC 3676).

What remains is trimmed; an answer with nothing of its own is empty.
"""

from __future__ import annotations

import re

# Answer above this line: every mail to a visitor starts with it.
MARKER = "## ---- "
_ATTRIBUTION = re.compile(
    r"^\s*(On\b.{0,200}\bwrote|El\b.{0,200}\b(va escriure|escribió)|Le\b.{0,200}\ba écrit)\s*:\s*$",
    re.IGNORECASE,
)
_ATTRIBUTION_START = re.compile(r"^\s*(On|El|Le)\s.{0,200}$", re.IGNORECASE)
_ATTRIBUTION_END = re.compile(r"^.{0,200}(wrote|va escriure|escribió|a écrit)\s*:\s*$")
_ORIGINAL = re.compile(r"^\s*-{2,}\s*(Original Message|Mensaje original|Missatge original)", re.I)
_OUTLOOK = re.compile(r"^\s*(From|De)\s*:\s.+$")
_OUTLOOK_NEXT = re.compile(r"^\s*(Sent|Date|Enviado|Enviat|Fecha|Data|To|Para|Per a)\s*:", re.I)


def strip(text: str) -> str:
    """The answer's own text (see the module docstring)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if line.startswith(MARKER) or line == "-- ":
            break
        if _ATTRIBUTION.match(line) or _ORIGINAL.match(line):
            break
        if _ATTRIBUTION_START.match(line) and _ATTRIBUTION_END.match(following):
            break
        if _OUTLOOK.match(line) and _OUTLOOK_NEXT.match(following):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()
