"""chatserver: self-hosted, embeddable live chat for online shops."""

__version__ = "0.1.0"
