"""The protocol's rules without I/O (sans-IO).

Inbound message views, headers and URL joining, client ids, redaction of secrets,
backoff, send windows, context tokens, typing tickets, quarantine of unusable
messages, the QR login state machine and the markdown scanner. Pure functions and
small state machines, tested without an event loop. A test
(``tests/test_architecture.py``) forbids ``trio``/``httpx`` imports here; modules
import only ``_wire``, ``_errors``, each other and the sans-IO public helpers.
"""
