"""``run --redis`` and ``worker`` with ``--metrics-port 0``: the lease gauge, worker counters.

Real processes, a real ``redis-server`` (the ``redis_server`` fixture fails, never
skips, under ``CI=true``) and ``weixin-trio fake-server``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING, Any

from prometheus_client.parser import text_string_to_metric_families

from weixin_trio._cli.app import main

from .._helpers import SRC, fake_http, fake_server_process
from .test_ops_cli import HANDLER, get, wait_until

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from tests._redis_server import RedisServer


def start(cwd: Path, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "weixin_trio", *argv, "--metrics-port", "0"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )


def metrics_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("metrics on http://127.0.0.1:"), first
    return first.split()[2].removesuffix("/metrics")


def samples(url: str) -> dict[str, list[Any]]:
    status, body = get(url + "/metrics")
    assert status == 200
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_leased_run_and_worker_serve_their_metrics(
    redis_server: RedisServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    redis = ["--redis", redis_server.url, "--redis-prefix", f"ops{uuid.uuid4().hex[:8]}"]
    (tmp_path / "ops_handlers.py").write_text(HANDLER)
    with fake_server_process() as fake:
        assert main(["login", "--base-url", fake["base_url"], *redis]) == 0
        capsys.readouterr()
        poller = start(tmp_path, "run", "ops_handlers:echo", *redis, "--node-id", "p1")
        with poller:
            url = metrics_url(poller)

            def lease_held() -> list[Any]:
                return samples(url).get("weixin_trio_lease_held", [])

            wait_until(lambda: [s.value for s in lease_held()] == [1.0])
            [held] = lease_held()
            assert held.labels["node"] == "p1"
            assert held.labels["account"].endswith("@im.bot")
            wait_until(lambda: get(url + "/readyz")[0] == 200)
            stop(poller)
        fanout = start(tmp_path, "run", "--fanout", *redis, "--node-id", "p2")
        worker = start(tmp_path, "worker", "ops_handlers:echo", *redis, "--node-id", "w1")
        with fanout, worker:
            metrics_url(fanout)
            url = metrics_url(worker)

            def partitions_held() -> list[float]:
                return [s.value for s in samples(url).get("weixin_trio_worker_partitions_held", [])]

            wait_until(lambda: partitions_held() == [16])
            [partitions] = samples(url)["weixin_trio_worker_partitions_held"]
            assert partitions.labels == {"node": "w1"}
            assert get(url + "/readyz")[0] == 200
            assert get(url + "/healthz")[0] == 200
            fake_http(fake["base_url"], "/_fake/inject", {"user": "eve@im.wechat", "text": "hi"})
            wait_until(lambda: len(fake_http(fake["base_url"], "/_fake/sent")) == 1)

            def worker_handled() -> list[float]:
                return [s.value for s in samples(url)["weixin_trio_worker_messages_handled_total"]]

            wait_until(lambda: worker_handled() == [1.0])
            [sends] = samples(url)["weixin_trio_send_latency_seconds_count"]
            assert sends.value == 1
            assert sends.labels["account"].endswith("@im.bot")
            stop(worker)
            stop(fanout)
