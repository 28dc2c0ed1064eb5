"""The `musivid` command's entry points: `run(argv)` (in-process, returns the exit code; the tests
call it) and `main()` (the console script: installs the signal handlers, exits). Importing this
module registers every command on the group."""
from __future__ import annotations

import os
import signal
import sys

import click

from ..errors import Interrupted, MusividError
from . import edit, make, studio, tools  # noqa: F401 - they register their commands on `cli`
from .app import EXIT_INTERRUPTED, STOP_SIGNALS, cli, reset_logging, say


def run(argv: list[str] | None = None) -> int:
    """Run the command line in this process; returns the exit code (tests call this). An interrupt
    (KeyboardInterrupt, or files.Interrupted from the handlers `main` installs) is exit code
    128 + the signal: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    from ..files import reset_signals

    try:
        return _run(argv)
    finally:
        reset_signals()


def _run(argv: list[str] | None) -> int:
    """`run` without forgetting the signal that stopped the command (`main` keeps it to the end)."""
    from ..files import write_error

    try:
        rv = cli.main(args=argv, standalone_mode=False, prog_name="musivid")
        return rv if isinstance(rv, int) else 0
    except MusividError as e:
        say(f"musivid: error: {e}")
        return e.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt) as e:
        cause = e if isinstance(e, Interrupted) else e.__cause__
        code = cause.exit_code if isinstance(cause, Interrupted) else EXIT_INTERRUPTED
        say(f"musivid: interrupted ({signal.Signals(code - 128).name}): finished work is kept in the project "
             "directory; run the same command again to resume")
        return code
    except click.exceptions.ClickException as e:
        e.show()
        return e.exit_code
    except OSError as e:  # a full or failing disk met outside the library's own writes (a cache...)
        err = write_error(e)
        if err is None:
            raise
        say(f"musivid: error: {err}")
        return err.exit_code
    finally:
        reset_logging()


def main() -> None:
    """The `musivid` command: the only place signal handlers are installed (the CLI process, not
    the library nor a program that calls `run`): SIGINT, SIGTERM and SIGHUP stop the command
    cleanly (files.on_signal: temp files removed, the checkpoint saved). The first signal decides
    the message and the exit code: the interpreter writes every signal's number into a wakeup
    pipe as it arrives, which tells on_signal the order; later signals are ignored until the
    process has exited (during its clean-up, its exit and the interpreter's own shutdown)."""
    from ..files import hold_signals, on_signal, signal_order

    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    signal_order(read)
    for s in STOP_SIGNALS:
        signal.signal(s, on_signal)
    try:
        try:
            code = _run(None)
        finally:
            hold_signals()  # from here on every signal is ignored, by on_signal and then by the system
    except KeyboardInterrupt as e:  # a signal in the instant after the command ended
        code = e.exit_code if isinstance(e, Interrupted) else EXIT_INTERRUPTED
    for s in STOP_SIGNALS:  # the interpreter's shutdown restores the default handlers, which would kill
        signal.signal(s, signal.SIG_IGN)
    sys.exit(code)
