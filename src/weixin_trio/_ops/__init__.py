"""The operations port of ``weixin-trio run`` and ``worker``: metrics, health, readiness.

- `sample`: what a running `run`/`worker` reports, read from the monitors' existing
  statistics (and each client's send counters) at scrape time, never per message.
- `readiness`: which accounts are not ready, and why (sans-IO).
- `collector`: a ``prometheus_client`` collector over a sample (``weixin_trio_*``).
- `app` and `serve`: the ASGI app (``/metrics``, ``/healthz``, ``/readyz``) and
  serving it with hypercorn's trio worker (the ``metrics`` extra).

Only ``weixin-trio run/worker --metrics-port`` imports this package.
"""
