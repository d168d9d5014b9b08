"""semrl.media.read_ahead: frames read by a thread of their own, in order, errors passed on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from semrl.errors import InvalidInputError
from semrl.media import read_ahead


def _counted(n: int, read: list[int], fail_at: int | None = None) -> Iterator[int]:
    for i in range(n):
        if i == fail_at:
            raise InvalidInputError(f"damaged at {i}")
        read.append(i)
        yield i


def test_items_come_in_order_from_another_thread() -> None:
    threads: set[str] = set()

    def frames() -> Iterator[int]:
        for i in range(50):
            threads.add(threading.current_thread().name)
            yield i

    assert list(read_ahead(frames(), depth=3)) == list(range(50))
    assert threads == {"semrl-read"}


def test_an_error_reaches_the_consumer_after_the_items_before_it() -> None:
    got: list[int] = []
    with pytest.raises(InvalidInputError, match="damaged at 5"):
        for item in read_ahead(_counted(10, [], fail_at=5), depth=2):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_the_reader_stays_at_most_depth_ahead_and_stops_when_closed() -> None:
    read: list[int] = []
    frames = read_ahead(_counted(1000, read), depth=4)
    assert next(frames) == 0
    time.sleep(0.3)  # time enough for the reader to fill the queue
    assert len(read) <= 1 + 4 + 1  # the item taken, the queue, the item waiting to enter it
    frames.close()
    assert not any(t.name == "semrl-read" for t in threading.enumerate())
    assert len(read) <= 1 + 4 + 1
