"""The hot path does not import httpx when its module is imported (issue 16).

httpx is imported only where a user's client, an in-process transport or a CDN
transfer needs it (inside functions, or in the modules that serve only those).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "weixin_trio"

HOT_PATH = [
    "_http/__init__.py",
    "_http/api.py",
    "_http/cdn_client.py",
    "_http/connect_tcp.py",
    "_http/connection.py",
    "_http/failures.py",
    "_http/pool.py",
    "_http/shared.py",
    "_http/target.py",
    "_http/tls.py",
    "_client/endpoints.py",
    "_client/open.py",
    "_client/cdn_download.py",
    "_client/cdn_transfer.py",
]


def _module_level_imports(tree: ast.Module) -> set[str]:
    """Top-level imports, leaving out ``if TYPE_CHECKING:`` blocks and function bodies."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", HOT_PATH)
def test_no_httpx_at_import_time(path: str) -> None:
    tree = ast.parse((SRC / path).read_text(encoding="utf-8"))
    imported = _module_level_imports(tree)
    assert not imported & {"httpx", "httpcore"}, f"{path} imports httpx at import time"


def test_the_checker_sees_a_top_level_import() -> None:
    assert _module_level_imports(ast.parse("import httpx\nif X:\n    import h11\n")) == {"httpx"}
