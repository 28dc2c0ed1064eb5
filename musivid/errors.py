"""Errors the library raises. `cli.py` maps them to one line on stderr and an exit code.

Every message names the bad thing (file, value), the problem and the fix, in one line.
Exit codes: 2 for bad usage or input (InputError), 1 for a run that failed for another reason.
"""
from __future__ import annotations


class MusividError(Exception):
    """Base class: an expected failure with a message fit for the user."""

    exit_code = 1


class InputError(MusividError):
    """A bad input file, argument or option value (a usage error)."""

    exit_code = 2


class ModelUnavailableError(MusividError):
    """Weights that are missing, cannot be fetched, or fail verification."""


class ChecksumError(ModelUnavailableError):
    """A weight file whose sha256 does not match the registry (or its recorded pin)."""


class WeightsMismatchError(ModelUnavailableError):
    """A weight file whose keys or shapes do not match the architecture (strict loading)."""


class ProjectBusyError(MusividError):
    """Another musivid process is writing the project (it holds the project lock)."""

    exit_code = 75  # EX_TEMPFAIL: try again when the other command has finished


class WriteError(MusividError):
    """A file the disk refused to write: no space left, over quota, a read-only file system, an I/O
    error. The message says what was being written, where, the space it needed (when known) and
    the space free; finished work is kept, so the same command run again resumes."""


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP, raised by the command line's handler (files.on_signal) so that
    every clean-up runs; a KeyboardInterrupt, so code that handles Ctrl-C handles these too."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 SIGINT, 143 SIGTERM, 129 SIGHUP
