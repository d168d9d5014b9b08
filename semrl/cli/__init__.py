"""The ``semrl`` command line.

Each command lives in its own module and only parses arguments; only this layer turns errors into
messages and exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
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


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 success, 1 error, 2 usage, 130 interrupted, 143 terminated)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # Python's default SIGTERM kills without unwinding, which left hidden temporary files behind.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *rest: Any, **kw: Any) -> None:
        if issubclass(category, InputWarning):
            print(f"semrl {args.command}: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, *rest, **kw)

    warnings.showwarning = show
    try:
        return int(args.func(args))
    except SemrlError as error:
        print(f"semrl {args.command}: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a full disk or a vanished folder while writing: what, not where in semrl
        print(f"semrl {args.command}: error: {error}; no partial output was kept", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"semrl {args.command}: interrupted; no partial output was kept", file=sys.stderr)
        return 130
    except Terminated:
        print(f"semrl {args.command}: terminated; no partial output was kept", file=sys.stderr)
        return 143
    finally:
        warnings.showwarning = shown
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
