"""chatserver: self-hosted, embeddable live chat for online shops."""

__version__ = "0.2.0"
