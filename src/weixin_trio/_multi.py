"""Temporary alias of ``_monitor.accounts`` for modules not moved yet (the CLI)."""

from ._monitor.accounts import AccountRunner as AccountRunner, open_accounts as open_accounts
