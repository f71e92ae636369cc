"""``--metrics-port`` and ``--metrics-host`` of ``run`` and ``worker`` (the ``metrics`` extra).

The options only record the address; `OpsAddress.check_installed` fails early (exit 1)
when the extra is missing, and ``weixin_trio._ops`` is imported only when the port is
asked for, so a bot that does not use it loads none of it.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import attrs

from .common import CliError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

__all__ = ["OpsAddress", "add_ops_options", "ops_address"]

_EXTRA_MODULES = ("prometheus_client", "hypercorn")


@attrs.frozen
class OpsAddress:
    """Where to serve ``/metrics``, ``/healthz`` and ``/readyz``."""

    host: str
    port: int


def add_ops_options(parser: argparse.ArgumentParser, *, port: Callable[[str], int]) -> None:
    """Add ``--metrics-port`` and ``--metrics-host`` to ``run`` or ``worker``."""
    parser.add_argument(
        "--metrics-port",
        type=port,
        default=None,
        metavar="PORT",
        help="serve /metrics (Prometheus), /healthz and /readyz on this port"
        " (0: a free one, printed; the metrics extra)",
    )
    parser.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address of the metrics port (default 127.0.0.1)",
    )


def ops_address(args: Any) -> OpsAddress | None:
    """The address asked for, or ``None``.

    Raises:
        CliError: ``--metrics-port`` without the ``metrics`` extra installed.
    """
    if getattr(args, "metrics_port", None) is None:
        return None
    missing = [m for m in _EXTRA_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise CliError(
            f"--metrics-port needs the metrics extra ({', '.join(missing)} missing):"
            " pip install 'weixin-trio[metrics]'"
        )
    return OpsAddress(args.metrics_host, args.metrics_port)
