"""Temporary alias of ``_monitor.values`` for modules not moved yet (the CLI)."""

from ._monitor.values import ErrorHook as ErrorHook, Handler as Handler
