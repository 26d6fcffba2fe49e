"""axe-core (npm, version locked in widget/package-lock.json) run in a real page.

``serious(page)`` injects ``axe.min.js`` and returns the violations of impact
``serious`` or ``critical`` as ``"rule-id: target, target (message)"`` lines,
for an assertion that lists what to fix.  axe looks inside open shadow roots,
so the widget is checked as the visitor's browser shows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE = Path(__file__).resolve().parents[2] / "widget" / "node_modules" / "axe-core" / "axe.min.js"
RUN = """async (include) => {
  const result = await axe.run(include ? {include: [include]} : document,
    {resultTypes: ["violations"]});
  return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map((n) => JSON.stringify(n.target)).slice(0, 5)}));
}"""


def serious(page: Page, include: Any = None) -> list[str]:
    """The serious and critical violations on ``page`` (within ``include``, an axe
    context such as ``["chatserver-chat"]``)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate(RUN, include)
    return [
        f"{v['id']}: {', '.join(v['targets'])} ({v['help']})"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]
