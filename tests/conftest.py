"""Shared test configuration: the project's own pytest plugin, hypothesis profiles."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

pytest_plugins = ["weixin_trio.testing.pytest_plugin"]

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.load_profile("default")
