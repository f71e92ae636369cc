"""Media benchmark: a large file up and down through the loopback fake CDN.

Run: ``.venv/bin/python benchmarks/bench_media.py [SIZE_MIB ...]`` (default 50 and 200).
Target: the bot's peak RSS grows by < 64 MiB whatever the file size (streaming
AES-128-ECB in constant memory). The fake server keeps the objects in its own process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness import fake_server

HERE = Path(__file__).parent


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [50, 200]
    for size in sizes:
        with fake_server() as (base_url, token), tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                [sys.executable, str(HERE / "_media_bot.py"), base_url, token, str(size), tmp],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
        print("  ".join(f"{k}={v:.1f}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
