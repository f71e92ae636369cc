"""Per-user conversation state (``msg.state``) and multi-step flows."""
