"""Access control: who may talk to a bot (policies, allow list, pairing codes)."""
