"""Load the recorded reference vectors kept in ``tests/data`` (copied from the conformance set)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"


def load_vectors(name: str) -> list[dict[str, Any]]:
    """All vectors of ``tests/data/<name>.json``."""
    doc = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    vectors: list[dict[str, Any]] = doc["vectors"]
    assert vectors, f"{name}.json has no vectors"
    return vectors


def vector_id(vector: dict[str, Any]) -> str:
    """pytest id for a vector."""
    return str(vector["id"])
