"""The command line: a click group (main), one module per group of commands, and the options they share."""
from .main import cli, main, run

__all__ = ["cli", "main", "run"]
