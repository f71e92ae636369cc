"""What every part of the command line shares: exit codes, the state directory."""

from __future__ import annotations

from pathlib import Path

from .._errors import CliError as CliError

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "default_state_dir",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def default_state_dir() -> Path:
    """The platform's state directory for weixin-trio (``platformdirs``)."""
    import platformdirs

    return Path(platformdirs.user_state_dir("weixin-trio", appauthor=False))
