"""Process limits the serving commands raise at start (``run``, ``worker``)."""

from __future__ import annotations

import logging

__all__ = ["raise_nofile_limit"]

log = logging.getLogger("weixin_trio.cli")


def raise_nofile_limit() -> tuple[int, int] | None:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit (one fd per parked account).

    A process serving thousands of accounts holds one connection per parked long
    poll; a soft limit of 1,024 would stop it near 1,000 accounts. Failures (no
    ``resource`` module, e.g. on Windows, or a refused ``setrlimit``) are ignored.

    Returns:
        The ``(soft, hard)`` limits in force afterwards, or ``None`` if unknown.
    """
    try:
        import resource
    except ImportError:
        log.debug("no resource module: the open-files limit stays as it is")
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        unlimited = resource.RLIM_INFINITY
        if soft == unlimited or hard == unlimited or soft >= hard:
            # (an unlimited hard limit is not a value setrlimit takes for NOFILE)
            log.debug("open-files limit stays %d (hard %d)", soft, hard)
            return soft, hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError) as exc:
        log.debug("cannot raise the open-files limit: %s", exc)
        return None
    log.debug("open-files limit raised from %d to %d", soft, hard)
    return hard, hard
