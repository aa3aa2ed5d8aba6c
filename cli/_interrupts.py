"""Ctrl-C and SIGTERM in the long commands (`imstats compute`, `agreement train`).

Both commands stop the same way. SIGTERM is turned into the KeyboardInterrupt that Ctrl-C
raises, whether the signal reaches the whole process group or the main process only.
The library then stops its workers and keeps the finished work (shards, committed
epochs), and raises a KeyboardInterrupt whose message says what is kept. The command
prints that message and, where given, the command line that resumes. It prints no
traceback and exits with status 130, for SIGTERM too: one status for "interrupted,
resumable", the one shells give Ctrl-C.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
from collections.abc import Iterator

import click

#: Exit status of an interrupted command (Ctrl-C or SIGTERM).
EXIT_INTERRUPTED = 130


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible(tool: str, resume: bool = False) -> Iterator[None]:
    """Run the block with SIGTERM as Ctrl-C; an interrupt ends the command (exit 130).

    The message of the KeyboardInterrupt (e.g. ``imstats.engine.RunInterrupted``) is
    printed on stderr after ``tool: ``; with ``resume``, then the command line to run
    again to resume (this one). Outside the main thread the signal handler is left alone.
    """
    old: dict[int, object] = {}
    with contextlib.suppress(ValueError):  # not the main thread (e.g. embedded): leave it
        old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    except KeyboardInterrupt as exc:
        if old:  # the work is stopped: a second Ctrl-C or SIGTERM must not tear the message
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        click.echo(f"{tool}: {str(exc) or 'interrupted'}", err=True)
        if resume:
            click.echo(f"{tool}: to resume, run the same command again:", err=True)
            click.echo(f"  {command_line(tool)}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        for sig, handler in old.items():  # as they were (the command may run embedded)
            signal.signal(sig, handler)  # type: ignore[arg-type]


def command_line(tool: str) -> str:
    """This process's command line as the user would type it: ``tool`` and its arguments."""
    return shlex.join([tool, *sys.argv[1:]])
