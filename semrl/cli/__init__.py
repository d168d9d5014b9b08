"""The ``semrl`` command line.

Each command lives in its own module and only parses arguments; only this layer turns errors into
messages and exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from semrl.errors import InputWarning, SemrlError

COMMAND_MODULES = ("semrl.cli.encode", "semrl.cli.eval", "semrl.cli.train", "semrl.cli.maps", "semrl.cli.smoke")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    from semrl.cli import version

    parser = argparse.ArgumentParser(
        prog="semrl",
        description="Task-driven semantic video coding: learned per-CTU QPs on a patched x265.",
    )
    parser.add_argument(
        "--version", action=version.VersionAction, help="print semrl's version, the x265 build and the weights found"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised where the process is, so every ``finally`` removes what it was writing."""


CLOSED_STDOUT = 128 + signal.SIGPIPE
"""The exit status when whoever read standard output stopped reading (as for a tool SIGPIPE ended)."""

STOPPED_BY = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143)}
"""What each stopping signal is called in the message, and the exit status it gives."""


class _StopSignals:
    """Turns Ctrl-C and SIGTERM into exceptions, and remembers that they came.

    The memory is what makes the exit status right. A terminal's Ctrl-C reaches FFmpeg's decoder
    too (it shares the process group), so the decode fails as the interrupt arrives; and a
    KeyboardInterrupt raised while a finalizer runs is swallowed by Python (reported as ignored).
    The failure that then surfaces (a SemrlError, an OSError, or a library's own error wrapping the
    interrupt) is the signal's consequence, not a fault of the input, and is reported as the signal.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Handles SIGTERM, and SIGINT unless something else already handles or ignores it."""
        # A shell without job control starts background commands with SIGINT ignored: keep that.
        wanted = [signal.SIGTERM]
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            wanted.append(signal.SIGINT)
        for signum in wanted:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Puts back the handlers :meth:`install` replaced."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        # Python's default SIGTERM kills without unwinding, which left hidden temporary files behind.
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated


def run_script(main: Callable[[], int]) -> int:
    """Run a benchmark script's ``main``: a semrl error is one line on stderr and exit status 2, as ``bdrate.py`` does.

    Args:
        main: The script's entry point, returning its exit status.
    """
    try:
        return main()
    except SemrlError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 success, 1 error, 2 usage, 130 interrupted, 143 terminated)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    signals = _StopSignals()
    if threading.current_thread() is threading.main_thread():
        signals.install()
    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *rest: Any, **kw: Any) -> None:
        if issubclass(category, InputWarning):
            print(f"semrl {args.command}: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, *rest, **kw)

    warnings.showwarning = show
    try:
        return int(args.func(args))
    except Exception as error:
        if signals.received:  # the error is the signal's consequence (see _StopSignals)
            return _stopped(args.command, signals.received[0])
        if isinstance(error, SemrlError):
            print(f"semrl {args.command}: error: {error}", file=sys.stderr)
            return 1
        if isinstance(error, BrokenPipeError) and _stdout_closed():
            return CLOSED_STDOUT  # `semrl ... | head -1`: stop as a tool killed by SIGPIPE does, without a word
        if isinstance(error, OSError):  # a full disk or a vanished folder while writing: what, not where in semrl
            print(f"semrl {args.command}: error: {error}; no partial output was kept", file=sys.stderr)
            return 1
        raise  # a bug: its traceback is what to report
    except KeyboardInterrupt:
        return _stopped(args.command, signal.SIGINT)
    except Terminated:
        return _stopped(args.command, signal.SIGTERM)
    finally:
        warnings.showwarning = shown
        signals.restore()


def _stdout_closed() -> bool:
    """Whether the reader of standard output has gone; if so, standard output goes to nothing from now on.

    Python writes what stdout still buffers at exit: without the redirection it would say again
    that the pipe was broken.
    """
    import select

    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # replaced by an object without a descriptor
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    if not any(events & select.POLLERR for _, events in poller.poll(0)):  # a pipe without reader: POLLERR
        return False
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)
    return True


def _stopped(command: str, signum: int) -> int:
    """Says the command was stopped by ``signum``; returns the exit status for it."""
    word, status = STOPPED_BY[signal.Signals(signum)]
    print(f"semrl {command}: {word}; no partial output was kept", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
