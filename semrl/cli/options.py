"""Option values several ``semrl`` commands parse the same way."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from semrl.errors import InvalidInputError


def at_least(least: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``least``.

    argparse then refuses anything else with the option's name, e.g. ``argument --runs: must be
    at least 1, got 0``, and exit status 2, before the command does any work.
    """

    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value

    return whole_number


def numbers(text: str, option: str, example: str = "50,100") -> list[float]:
    """A comma-separated option value of numbers (``--rates 50,100``); ``example`` is what its message shows.

    Raises:
        InvalidInputError: An item is not a number, or there is none.
    """
    try:
        values = [float(item) for item in comma_list(text)]
    except ValueError:
        raise InvalidInputError(f"{option} takes comma-separated numbers, e.g. {example}; got {text!r}") from None
    if not values:
        raise InvalidInputError(f"{option} takes comma-separated numbers, e.g. {example}; got {text!r}")
    return values


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
