"""``run`` and ``worker`` raise the soft open-files limit to the hard limit at start."""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from typing import TYPE_CHECKING

import pytest

from weixin_trio._cli import limits, main, serve

if TYPE_CHECKING:
    from pathlib import Path


class FakeResource(types.SimpleNamespace):
    RLIMIT_NOFILE = 7
    RLIM_INFINITY = -1

    def __init__(self, soft: int, hard: int, *, refuse: bool = False) -> None:
        super().__init__(limits=(soft, hard), refuse=refuse, calls=[])

    def getrlimit(self, which: int) -> tuple[int, int]:
        assert which == self.RLIMIT_NOFILE
        return self.limits

    def setrlimit(self, which: int, new: tuple[int, int]) -> None:
        self.calls.append(new)
        if self.refuse:
            raise ValueError("not allowed")
        self.limits = new


def test_the_soft_limit_is_raised_to_the_hard_limit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeResource(1024, 20000)
    monkeypatch.setitem(sys.modules, "resource", fake)
    with caplog.at_level(logging.DEBUG, logger="weixin_trio.cli"):
        assert limits.raise_nofile_limit() == (20000, 20000)
    assert fake.calls == [(20000, 20000)]
    assert "raised from 1024 to 20000" in caplog.text
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


@pytest.mark.parametrize(("soft", "hard"), [(20000, 20000), (-1, -1), (1024, -1)])
def test_a_limit_already_at_the_top_or_unlimited_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, soft: int, hard: int
) -> None:
    fake = FakeResource(soft, hard)
    monkeypatch.setitem(sys.modules, "resource", fake)
    assert limits.raise_nofile_limit() == (soft, hard)
    assert fake.calls == []


def test_failures_and_platforms_without_resource_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeResource(256, 4096, refuse=True)
    monkeypatch.setitem(sys.modules, "resource", fake)
    assert limits.raise_nofile_limit() is None
    assert fake.calls == [(4096, 4096)]
    monkeypatch.setitem(sys.modules, "resource", None)  # import resource: ImportError
    assert limits.raise_nofile_limit() is None


@pytest.mark.parametrize("command", [["run"], ["worker", "--redis", "redis://127.0.0.1:1"]])
def test_run_and_worker_raise_it_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str]
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(serve, "raise_nofile_limit", lambda: calls.append("raised"))
    argv = [*command, "no_such_module:handler", "--state-dir", str(tmp_path)]
    assert main(argv) == 1  # the handler does not load; the limit was raised before
    assert calls == ["raised"]


def test_a_real_run_raises_its_soft_limit(tmp_path: Path) -> None:
    resource = pytest.importorskip("resource")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard < 2:
        pytest.skip("needs a finite hard limit")
    # A child with a low soft limit runs the CLI's start step and reports its limit.
    code = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, {hard} - 1), {hard}))\n"
        "from weixin_trio._cli.limits import raise_nofile_limit\n"
        "raise_nofile_limit()\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert int(out.stdout) == hard
