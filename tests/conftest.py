"""Shared test configuration: the project's own pytest plugin, hypothesis profiles."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["weixin_trio.testing.pytest_plugin"]

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
# CI runs the same examples every time (a rare counterexample should be found by a
# developer's run, not block a landing at random); locally every run explores anew.
settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=100,
    derandomize=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "default")
