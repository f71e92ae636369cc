"""HTTP surfaces of the CLI: the playground's web UI and the operations port.

Both are ASGI apps served by hypercorn's trio worker (`serve.serve_asgi`); only the
``web`` and ``metrics`` extras install hypercorn, and only these modules import it.
"""
