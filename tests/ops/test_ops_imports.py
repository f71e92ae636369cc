"""``run``/``worker`` without ``--metrics-port`` load none of the operations port."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .._helpers import SRC

PROBE = """
import json, sys
from weixin_trio._cli import app, serve, ops_options, logs
args = app._parser().parse_args(["run", "m:h", "--log-format", "json"])
assert ops_options.ops_address(args) is None
logs.configure_logging(0, args.log_format)
print(json.dumps(sorted(sys.modules)))
"""


def test_the_cli_loads_no_metrics_code_without_the_port() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(proc.stdout)
    for name in ("weixin_trio._ops", "prometheus_client", "hypercorn", "weixin_trio._web"):
        assert not [m for m in modules if m == name or m.startswith(name + ".")], name
