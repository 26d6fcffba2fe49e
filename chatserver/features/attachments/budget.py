"""The bytes of upload bodies the process holds at once (``--upload-memory``).

Bodies are held in memory while they arrive and while they are stored, so
the process has one ``UploadBudget`` for all uploads in flight; each upload
holds a ``Lease`` on it (``endpoints.upload``).
"""

from __future__ import annotations

from ...types import JSON

UPLOAD_MEMORY = 64 * 1024 * 1024  # bytes of upload bodies in flight, whole process


class UploadBudget:
    """The bytes of upload bodies that the whole process holds at once.

    An upload takes a ``Lease`` and grows it before it holds more bytes;
    ``grow`` refuses (and takes nothing) when the total would pass ``limit``.
    The event loop is the only lock: ``grow`` and ``release`` never await.
    """

    def __init__(self, limit: int = UPLOAD_MEMORY) -> None:
        if limit < 1:
            raise ValueError("the upload budget needs at least one byte")
        self.limit = limit
        self.held = 0
        self.refused = 0  # uploads answered 503 because the budget was full

    def lease(self) -> Lease:
        return Lease(self)

    def stats(self) -> JSON:
        return {"held": self.held, "budget": self.limit, "refused": self.refused}


class Lease:
    """One upload's share of an ``UploadBudget``; a context manager that
    gives the share back on exit, however the upload ends."""

    def __init__(self, budget: UploadBudget) -> None:
        self.budget = budget
        self.size = 0

    def grow(self, size: int) -> bool:
        """Hold ``size`` bytes in all (never fewer than now); ``False`` if the
        budget has no room, the lease then unchanged."""
        extra = size - self.size
        if extra <= 0:
            return True
        if self.budget.held + extra > self.budget.limit:
            self.budget.refused += 1
            return False
        self.budget.held += extra
        self.size = size
        return True

    def release(self) -> None:
        self.budget.held -= self.size
        self.size = 0

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
