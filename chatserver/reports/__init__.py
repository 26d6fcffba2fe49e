"""Reports (docs/reports.md): what analysts and shop owners read about their chats.

``facts.py``    one conversation's facts, computed from its entries (the rules)
``metrics.py``  the report tables aggregated from facts rows
``service.py``  the listener that keeps the rows, the sweep, rebuild, queries
``svg.py``      the charts, drawn on the server as SVG
``web.py``      ``/console/reports`` and ``/console/api/reports/...`` (JSON, CSV)
``cli.py``      ``chatserver reports rebuild``

The rows live in the Store's ``ReportStore`` domain (``store/reports.py``).
This module imports nothing: the Store's backends import ``facts``.
"""
