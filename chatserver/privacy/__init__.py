"""Privacy: what the shop can do for a visitor who asks about their data (docs/privacy.md).

* ``export``  one visitor's everything, as a zip (an access request)

Card numbers never reaching the server is ``chatserver/cards.py`` and the
widget; consent is the widget's (``data-consent``).
"""
