"""Proactive triggers: rules an admin saves, and the engine that fires them.

Where things live (docs/triggers.md):

* ``rules.py``: a rule's validation (``parse_rule``) and, re-exported, the rest of
  the pure rule code: ``model.py``, ``regex.py``, ``conditions.py``;
* ``hours.py``: business hours (pure); ``scheduler.py``: the timer heap (pure);
* ``engine.py``: ``Proactive``, the engine in the hub (``hub.triggers``), with
  ``watch.py`` (what it keeps per site and visitor), ``actions.py`` (firing),
  ``waits.py`` (greetings waiting for an answer, the sweep) and ``names.py``
  (the document kinds, tag and counter group it stores under);
* ``admin.py``: the admin's writes (a rule, the order, an import, business
  hours), each one service call that also tells every process.

Importers take the engine's names from here; the pure modules are imported
by their own paths.
"""

from __future__ import annotations

from .engine import RULES_TTL, Proactive
from .names import COUNTERS, PROACTIVE_TAG, TRIGGER_KIND, WAIT_KIND

__all__ = ["COUNTERS", "PROACTIVE_TAG", "RULES_TTL", "TRIGGER_KIND", "WAIT_KIND", "Proactive"]
