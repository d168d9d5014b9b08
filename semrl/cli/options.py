"""Option values several ``semrl`` commands parse the same way."""

from __future__ import annotations

from semrl.errors import InvalidInputError


def class_names(text: str | None) -> tuple[str, ...] | None:
    """``--classes person,car`` as a tuple of names; None when the option was not given.

    Raises:
        InvalidInputError: The option holds no name.
    """
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise InvalidInputError("--classes needs at least one class name, e.g. --classes person,car")
    return names
