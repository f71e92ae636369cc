"""Scale-out on Redis (``pip install weixin-trio[redis]``).

- :class:`RedisStore` / :func:`open_redis_store`: the Store protocol on Redis, shared
  by processes on any number of machines.
- :func:`open_leased_accounts`: processes share the stored accounts through leases
  (at most one polls an account; a dead process's accounts are taken over).
"""

from ._balance import LeasePlan as LeasePlan, fair_share as fair_share, plan_leases as plan_leases
from ._leases import (
    LeasedAccounts as LeasedAccounts,
    Leases as Leases,
    open_leased_accounts as open_leased_accounts,
)
from ._store import RedisStore as RedisStore, open_redis_store as open_redis_store

__all__ = [
    "LeasePlan",
    "LeasedAccounts",
    "Leases",
    "RedisStore",
    "fair_share",
    "open_leased_accounts",
    "open_redis_store",
    "plan_leases",
]
