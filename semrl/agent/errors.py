"""Errors of the agent layer."""

from __future__ import annotations

from semrl.errors import SemrlError


class PolicyMismatchError(SemrlError, ValueError):
    """A policy checkpoint does not fit what it is loaded for (task, spaces, encoder or weights)."""
