"""Work spread over a Ray cluster: one task per picture, clip point or file, results back to the driver.

Three jobs are embarrassingly parallel and take ``--ray [ADDRESS]``: the fast-mode tables of
``semrl train`` (:func:`envs.tables.build_tables`), the encodes and task evaluations of
``benchmarks/bdrate.py`` (:func:`semrl.bench.runner.run_methods`) and ``semrl encode`` with several
inputs. Without ``--ray`` they run as before on this machine.

How a run goes:

- :func:`session` joins a cluster (``auto`` or ``HOST:PORT``) or starts a local Ray instance
  (``local``, what ``--ray`` alone means), and leaves it as it found it.
- :func:`run_jobs` submits one Ray task per job, at most a few per CPU of the cluster at a time
  (so a 10,000-picture run does not put every picture in the object store at once), and hands each
  result to the driver's callback as it arrives: the driver, not the worker, writes the caches, so
  workers need no shared file system and a cache entry is written whole or not at all. An
  interrupted run keeps what arrived and recomputes only the rest.
- Workers build their encoder and task net once per worker process (:func:`per_process`), not
  per task.
- Each result carries its worker's identity (x265 build and task-net weights, as the job's work
  function reports them); a result whose identity differs from the driver's is refused and
  reported, so a node with another build or other weights cannot mix its numbers into a run.
- A task whose worker process dies is retried by Ray (:data:`MAX_RETRIES`); a job that fails
  (bad input, an error in the work) is reported by name and the run goes on.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from semrl.errors import InvalidInputError, SemrlError

LOCAL = "local"
"""The address meaning: start a Ray instance on this machine for the run."""

MAX_RETRIES = 3
"""Times Ray reruns a task whose worker process died (a crash, a kill, a lost node)."""

IN_FLIGHT_PER_CPU = 2
"""Tasks submitted per CPU of the cluster before waiting for one to finish."""

_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9_.\-]+:\d{1,5})$")

T = TypeVar("T")
R = TypeVar("R")

Work = Callable[[Any], tuple[dict[str, str], Any]]
"""A job's work on a worker: takes the job's payload, returns (the worker's identity, the result)."""


class ClusterError(SemrlError):
    """Ray is missing or the cluster cannot be reached."""


@dataclass(frozen=True)
class Failure:
    """A job that gave no result.

    Attributes:
        index: The job's index in the submitted sequence.
        name: The job's name (a picture, a clip at a point, a file).
        reason: Why, in one line.
    """

    index: int
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def check_address(text: str) -> str:
    """The Ray address of a ``--ray`` option: ``local``, ``auto`` or ``[ray://]HOST:PORT``.

    Raises:
        InvalidInputError: Anything else (often an input file taken for the address).
    """
    if not _ADDRESS.match(text):
        raise InvalidInputError(
            f"--ray takes 'local', 'auto' or HOST:PORT, got {text!r}; to start a local Ray instance put --ray "
            "after the inputs or write --ray local"
        )
    return text


def _address_option(text: str) -> str:
    """:func:`check_address` as an argparse type, whose message argparse shows (it hides a ``ValueError``'s)."""
    import argparse

    try:
        return check_address(text)
    except InvalidInputError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--ray ")) from None


def add_ray_option(parser: Any, what: str) -> None:
    """Adds ``--ray [ADDRESS]`` to an argparse parser; ``what`` says what runs as Ray tasks."""
    parser.add_argument(
        "--ray", nargs="?", const=LOCAL, type=_address_option, metavar="ADDRESS",
        help=f"run {what} as Ray tasks: alone (or 'local') on a local Ray instance, 'auto' or HOST:PORT to join a "
        "running cluster (pip install 'semrl[ray]')",
    )  # fmt: skip


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ClusterError("--ray needs Ray: pip install 'semrl[ray]' (or pip install ray)") from e
    return ray


@contextmanager
def session(address: str, *, num_cpus: int | None = None) -> Iterator[None]:
    """Connects to Ray for the ``with`` block: a new local instance for ``local``, else the cluster at ``address``.

    A connection that already exists (a test's, or a caller's) is used as it is and left open.

    Args:
        address: ``local``, ``auto`` or ``[ray://]HOST:PORT`` (:func:`check_address`).
        num_cpus: CPUs of a local instance (default: all of this machine's).

    Raises:
        ClusterError: Ray is not installed or the cluster cannot be reached.
    """
    ray = _ray()
    if ray.is_initialized():
        yield
        return
    check_address(address)
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True, "logging_level": "warning"}
    if address not in (LOCAL, "auto") and not address.startswith("ray://"):
        _check_listening(address)
    try:
        if address == LOCAL:
            ray.init(num_cpus=num_cpus, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ClusterError(
            f"cannot join the Ray cluster at {address!r}: {e}. Start it with 'ray start --head' on the head node; "
            f"if it uses token authentication, set RAY_AUTH_MODE=token here and copy ~/.ray/auth_token from the head"
        ) from e
    try:
        yield
    finally:
        ray.shutdown()


def _check_listening(address: str, timeout_s: float = 5.0) -> None:
    """Fails fast when nothing listens at HOST:PORT (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ClusterError(
            f"no Ray cluster at {address}: {e.strerror or e}; start it with 'ray start --head --port={port}' on "
            f"{host}, or run without an address (--ray) for a local Ray instance"
        ) from e


_PER_PROCESS: dict[Any, Any] = {}


def per_process(factory: Callable[[], T]) -> T:
    """``factory()`` built once per process and kept: a worker's encoder or task net, shared by its tasks.

    Args:
        factory: A hashable factory (a frozen dataclass), the cache key.
    """
    if factory not in _PER_PROCESS:
        _PER_PROCESS[factory] = factory()
    result: T = _PER_PROCESS[factory]
    return result


def _execute(work: Work, payload: Any) -> tuple[dict[str, str], str, Any]:
    try:
        import torch

        torch.set_num_threads(1)  # one task per CPU: more threads only contend
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    identity, result = work(payload)
    return identity, f"{socket.gethostname()} (pid {os.getpid()})", result


def identity_mismatch(expected: Mapping[str, str], got: Mapping[str, str]) -> str | None:
    """What differs between the driver's identity and a worker's, or None when nothing does."""
    differ = [f"{k} {got.get(k)!r} (this run: {v!r})" for k, v in expected.items() if got.get(k) != v]
    return "; ".join(differ) or None


def cluster_cpus() -> int:
    """CPUs of the connected Ray cluster."""
    return max(int(_ray().cluster_resources().get("CPU", 1)), 1)


def run_jobs(
    work: Work,
    jobs: Sequence[tuple[str, Any]],
    *,
    identity: Mapping[str, str],
    on_result: Callable[[int, Any], None],
    desc: str = "ray tasks",
    progress: bool = True,
) -> list[Failure]:
    """Runs ``work(payload)`` for every job on the connected cluster; results go to ``on_result`` as they come.

    Args:
        work: Module-level function (workers import it) returning (identity, result).
        jobs: (name, payload) pairs; a payload is pickled to the worker (large arrays go through
            Ray's object store).
        identity: The driver's identity; a result whose worker reports another is refused.
        on_result: Called on the driver with (job index, result) for each accepted result, in
            the order they finish.
        desc: Progress bar label.
        progress: Show a progress bar.

    Returns:
        The jobs that gave no result, by name and reason.
    """
    from tqdm import tqdm

    ray = _ray()
    remote = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_execute)
    limit = IN_FLIGHT_PER_CPU * cluster_cpus()
    pending: dict[Any, int] = {}
    failures: list[Failure] = []
    queue = iter(range(len(jobs)))
    bar = tqdm(total=len(jobs), desc=desc, unit="task", disable=not progress)

    def submit() -> None:
        for index in queue:
            name, payload = jobs[index]
            pending[remote.options(name=f"semrl:{name}"[:100]).remote(work, payload)] = index
            if len(pending) >= limit:
                return

    try:
        submit()
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done[0])
            name = jobs[index][0]
            try:
                got, worker, result = ray.get(done[0])
            except ray.exceptions.RayTaskError as e:
                failures.append(Failure(index, name, f"{type(e.cause).__name__}: {e.cause}"))
            except ray.exceptions.RayError as e:
                failures.append(Failure(index, name, f"{type(e).__name__}: {str(e).splitlines()[0]}"))
            else:
                mismatch = identity_mismatch(identity, got)
                if mismatch is None:
                    on_result(index, result)
                else:
                    failures.append(Failure(index, name, f"refused: worker {worker} has {mismatch}"))
            bar.update()
            submit()
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
    return failures


def report_failures(failures: Sequence[Failure], what: str) -> str:
    """One message naming every failed job (for a warning or an error)."""
    shown = "; ".join(str(f) for f in failures[:10])
    more = f"; and {len(failures) - 10} more" if len(failures) > 10 else ""
    return f"{len(failures)} {what} failed on the cluster: {shown}{more}"
