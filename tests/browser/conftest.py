"""Fixtures the browser tests share, defined beside the tests that first needed them.

``browser`` and ``demo`` (``test_demo_browser.py``), ``chromium``, ``context``
and ``shops`` (``test_widget_browser.py``), ``contexts`` and ``problems``
(``test_console_browser.py``) are visible to every test in this folder.
"""

from .test_console_browser import contexts, problems  # noqa: F401
from .test_demo_browser import browser, demo  # noqa: F401
from .test_widget_browser import chromium, context, shops  # noqa: F401
