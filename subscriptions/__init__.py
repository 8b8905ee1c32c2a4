"""Live updates: one backend watch per document per process, fanned out to many sockets."""

from subscriptions.hub import DocumentHub

__all__ = ["DocumentHub"]
