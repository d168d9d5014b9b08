"""Option values several ``semrl`` commands parse the same way."""

from __future__ import annotations

from semrl.errors import InvalidInputError


def comma_list(text: str) -> tuple[str, ...]:
    """The non-empty, stripped items of a comma-separated option value (``"a, b,"`` -> ``("a", "b")``)."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def class_names(text: str | None) -> tuple[str, ...] | None:
    """``--classes person,car`` as a tuple of names; None when the option was not given.

    Raises:
        InvalidInputError: The option holds no name.
    """
    if text is None:
        return None
    names = comma_list(text)
    if not names:
        raise InvalidInputError("--classes needs at least one class name, e.g. --classes person,car")
    return names


def index_range(text: str | None, option: str) -> tuple[int, int] | None:
    """``START:STOP`` as a pair of whole numbers; None when the option was not given.

    Raises:
        InvalidInputError: ``text`` is not two whole numbers joined by a colon.
    """
    if text is None:
        return None
    parts = text.split(":")
    if len(parts) == 2:
        try:
            return int(parts[0]), int(parts[1])
        except ValueError:
            pass
    raise InvalidInputError(f"{option} takes START:STOP, two whole numbers such as 0:32; got {text!r}")
