"""The Store contract, one file per domain, on every backend (``conftest.py``)."""
