"""The fault panel's presets: what each switch injects into the fake server, and undoes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

import attrs

from ..testing import Fault

if TYPE_CHECKING:
    from ..testing import FakeILinkServer

__all__ = ["PRESETS", "FaultPanel", "Preset"]

#: Seconds the "slow server" switch delays each answer.
SLOW_SECONDS: Final = 3.0


@attrs.frozen
class Preset:
    """One switch: a label and the fault per endpoint while it is on."""

    label: str
    faults: tuple[tuple[str, Fault], ...]


PRESETS: Final = {
    "http500": Preset(
        "HTTP 500 on every poll and send",
        (("getupdates", Fault.http_status(500)), ("sendmessage", Fault.http_status(500))),
    ),
    "stale": Preset("ret -14 (stale token) on every poll", (("getupdates", Fault.stale_token()),)),
    "throttle": Preset(
        "ret -2 (throttled, or the window is closed) on every send",
        (("sendmessage", Fault.rate_limited()),),
    ),
    "slow": Preset(
        f"a slow server: every poll and send answers after {SLOW_SECONDS:g} s",
        (
            ("getupdates", Fault.delay(SLOW_SECONDS)),
            ("sendmessage", Fault.delay(SLOW_SECONDS)),
        ),
    ),
}


class FaultPanel:
    """Which presets are on; switching one re-applies every switch that stays on."""

    def __init__(self, fake: FakeILinkServer) -> None:
        self.fake = fake
        self.on: set[str] = set()

    def state(self) -> list[dict[str, object]]:
        """``[{"name", "label", "on"}]`` of every preset."""
        return [{"name": n, "label": p.label, "on": n in self.on} for n, p in PRESETS.items()]

    def set(self, name: str, on: bool) -> None:
        """Turn a preset on or off.

        Raises:
            KeyError: No such preset.
        """
        if name not in PRESETS:
            raise KeyError(name)
        (self.on.add if on else self.on.discard)(name)
        self.fake.clear_faults()
        for active in sorted(self.on):  # a later preset wins on a shared endpoint
            for endpoint, fault in PRESETS[active].faults:
                self.fake.inject_fault(endpoint, fault, times=math.inf)
