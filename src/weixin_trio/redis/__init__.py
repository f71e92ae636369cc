"""Scale-out on Redis (``pip install weixin-trio[redis]``).

- `RedisStore` / `open_redis_store`: the Store protocol on Redis, shared
  by processes on any number of machines.
- `open_leased_accounts`: processes share the stored accounts through leases
  (at most one polls an account; a dead process's accounts are taken over).
- `StreamPublisher` and `open_fanout_worker`: pollers hand messages to
  worker processes through Redis Streams (per-user order kept).
"""

from ._balance import LeasePlan as LeasePlan, fair_share as fair_share, plan_leases as plan_leases
from ._coordinator import LeaseCoordinator as LeaseCoordinator
from ._leases import (
    LeasedAccounts as LeasedAccounts,
    Leases as Leases,
    open_leased_accounts as open_leased_accounts,
)
from ._store import RedisStore as RedisStore, open_redis_store as open_redis_store
from ._streams import (
    StreamPublisher as StreamPublisher,
    agree_partitions as agree_partitions,
    partition_of as partition_of,
)
from ._worker import (
    FanoutStatistics as FanoutStatistics,
    FanoutWorker as FanoutWorker,
    open_fanout_worker as open_fanout_worker,
)

__all__ = [
    "FanoutStatistics",
    "FanoutWorker",
    "LeaseCoordinator",
    "LeasePlan",
    "LeasedAccounts",
    "Leases",
    "RedisStore",
    "StreamPublisher",
    "agree_partitions",
    "fair_share",
    "open_fanout_worker",
    "open_leased_accounts",
    "open_redis_store",
    "partition_of",
    "plan_leases",
]
