#!/usr/bin/env python3
"""Developer entry point: ``python3 tasks.py demo`` and ``python3 tasks.py check``.

Creates ``.venv`` on first use (stdlib ``venv`` + ``pip``), installs the project in
editable mode with its development extras, then runs the requested job.  It needs
nothing but Python 3.11+ and access to the package index.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".weixin-trio-installed"
# The docs toolchain lives in a venv of its own: Zensical brings click and pygments, and
# with those installed `import httpx` also imports its CLI (and rich), which would
# distort the library's import footprint and memory figures.
DOCS_VENV = ROOT / ".venv-docs"
DOCS_PY = DOCS_VENV / ("Scripts" if os.name == "nt" else "bin") / PY.name
EXTRAS = "dev"


def _run(*argv: str | Path) -> None:
    print("+", " ".join(str(a) for a in argv), flush=True)
    result = subprocess.run([str(a) for a in argv], cwd=ROOT, check=False)
    if result.returncode:
        sys.exit(result.returncode)


def _fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_venv() -> None:
    """Create ``.venv`` and install the project unless it is already up to date."""
    if sys.version_info < (3, 11):  # noqa: UP036 - tasks.py itself may run on an older Python
        sys.exit("weixin_trio needs Python 3.11 or newer")
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    _run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(PY, "-m", "pip", "install", "--quiet", "-e", f".[{EXTRAS}]")
    STAMP.write_text(_fingerprint())


def ensure_docs_venv() -> None:
    """Create ``.venv-docs`` with the ``docs`` extra's packages unless up to date."""
    import tomllib

    stamp = DOCS_VENV / ".weixin-trio-docs-installed"
    if stamp.exists() and stamp.read_text() == _fingerprint():
        return
    if not DOCS_PY.exists():
        venv.EnvBuilder(with_pip=True, clear=False).create(DOCS_VENV)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = extras["optional-dependencies"]["docs"]
    _run(DOCS_PY, "-m", "pip", "install", "--quiet", *requirements)
    stamp.write_text(_fingerprint())


def demo(args: list[str]) -> None:
    _run(PY, "-m", "weixin_trio", "demo", *args)


LINTED = ("src", "tests", "examples", "benchmarks", "tasks.py")


def check(args: list[str]) -> None:
    _run(PY, "-m", "ruff", "check", *LINTED)
    _run(PY, "-m", "ruff", "format", "--check", *LINTED)
    _run(PY, "-m", "mypy")
    ensure_docs_venv()
    _run(DOCS_PY, "-m", "zensical", "build", "--strict", "--clean", "-f", "mkdocs.yml")
    _run(PY, "-m", "pytest", *args)


def test(args: list[str]) -> None:
    _run(PY, "-m", "pytest", *args)


MERMAID_CLI = "@mermaid-js/mermaid-cli@12.2.0"


def diagrams(args: list[str]) -> None:
    """Render ``docs/diagrams/*.mmd`` to the SVGs the docs show (offline, no JS needed).

    Needs Node.js (npx) and a Chromium (``apt-get install chromium``); not part of
    ``check``, which only verifies that every diagram has its SVG.
    """
    import json
    import shutil
    import tempfile

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None or shutil.which("npx") is None:
        sys.exit("diagrams needs npx and chromium on PATH")
    flags = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as config:
        json.dump({"executablePath": browser, "args": flags}, config)
    os.environ["PUPPETEER_SKIP_DOWNLOAD"] = "1"
    for source in sorted((ROOT / "docs" / "diagrams").glob("*.mmd")):
        target = source.with_suffix(".svg")
        _run("npx", "--yes", MERMAID_CLI, "-p", config.name, "-i", source, "-o", target, *args)


JOBS = {"demo": demo, "check": check, "test": test, "diagrams": diagrams}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in JOBS:
        sys.exit(f"usage: python3 tasks.py {{{'|'.join(JOBS)}}} [args...]")
    ensure_venv()
    JOBS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
