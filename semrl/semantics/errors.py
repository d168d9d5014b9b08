"""Errors of the semantic layer (re-exported from :mod:`semrl.assets` and :mod:`semrl.errors`)."""

from __future__ import annotations

from semrl.assets import AssetNotFoundError
from semrl.errors import InputNotFoundError, InvalidInputError, SemrlError

__all__ = ["AssetNotFoundError", "InputNotFoundError", "InvalidInputError", "SemrlError"]
