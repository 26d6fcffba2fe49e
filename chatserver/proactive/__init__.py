"""Proactive triggers: rules an admin saves, and the engine that fires them.

Where things live (docs/triggers.md):

* ``rules.py``: a rule's model and validation (``parse_rule``), pure;
* ``hours.py``: business hours (pure); ``scheduler.py``: the timer heap (pure);
* ``engine.py``: ``Proactive``, the engine in the hub (``hub.triggers``).

Importers take the engine's names from here; the pure modules are imported
by their own paths.
"""

from __future__ import annotations

from .engine import COUNTERS, PROACTIVE_TAG, RULES_TTL, TRIGGER_KIND, WAIT_KIND, Proactive

__all__ = ["COUNTERS", "PROACTIVE_TAG", "RULES_TTL", "TRIGGER_KIND", "WAIT_KIND", "Proactive"]
