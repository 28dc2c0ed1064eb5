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
