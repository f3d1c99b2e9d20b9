"""The errors a user must act on: a leaf module (imports nothing of centerpose) that every layer may raise from.

:class:`RunError` is the base of every error that ends a command with one line naming the file or key and the
problem (bad file, bad checkpoint, bad config value, missing dataset, unsupported source, failed download,
divergence); the entry points' error boundary prints it without a traceback.
"""

from __future__ import annotations

__all__ = ["RunError"]


class RunError(RuntimeError):
    """An error a user must act on; the message says what and how, in one line where possible."""
