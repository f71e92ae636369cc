"""Key layout and the Lua scripts of the Redis store and of account leases.

Every key of one account carries the same hash tag (``{<account-key>}``), so the
scripts below touch a single slot and work on Redis Cluster. Layout, for the prefix
``wxt`` and the account key ``bot-im-bot``::

    wxt:{bot-im-bot}:meta      hash   cursor, seq (acceptance counter)
    wxt:{bot-im-bot}:pending   hash   message id -> "<seq>:<json {raw, n}>"
    wxt:{bot-im-bot}:fails     hash   message id -> failed attempts
    wxt:{bot-im-bot}:seen      list   recently accepted ids (the dedupe window)
    wxt:{bot-im-bot}:ctx       hash   user -> context token
    wxt:{bot-im-bot}:inbound   hash   user -> time of the latest message
    wxt:{bot-im-bot}:dead      list   dead letters (JSON)
    wxt:{bot-im-bot}:outbox    hash   entry id -> "<seq>:<json>"
    wxt:{bot-im-bot}:lease     string the lease token of the owning process
    wxt:{fanout-N}:stream      stream fan-out partition N (account, id, message JSON)
    wxt:{fanout-N}:fanned      zset   "<account> <id>" published lately (dedupe)
    wxt:{fanout-N}:lease       string the lease of the worker consuming partition N
    wxt:accounts               hash   account id -> credentials (JSON)
    wxt:nodes                  zset   live pollers, scored by heartbeat expiry
    wxt:workers                zset   live fan-out workers, likewise
    wxt:fanout                 hash   partitions (the count every process must agree on)
    wxt:status                 hash   account id -> heartbeat of ``weixin-trio run``

Message JSON never goes through Lua's ``cjson`` (its numbers are doubles, which would
round 64-bit message ids); the scripts store the strings they are given.
"""

from __future__ import annotations

from ..store._file import account_key

__all__ = [
    "ACCOUNT_KEYS",
    "ACK",
    "HEARTBEAT",
    "LOAD",
    "PUBLISH",
    "RELEASE",
    "RENEW",
    "WRITE",
    "account_keys",
    "lease_key",
    "partition_keys",
]

#: The per-account keys, in the order the scripts receive them.
ACCOUNT_KEYS = ("meta", "pending", "fails", "seen", "ctx", "inbound", "dead", "outbox", "lease")


def account_keys(prefix: str, account: str) -> list[str]:
    """The keys of ``account``, hash-tagged into one cluster slot."""
    tag = account_key(account)
    return [f"{prefix}:{{{tag}}}:{name}" for name in ACCOUNT_KEYS]


def lease_key(prefix: str, account: str) -> str:
    """The lease key of ``account`` (same slot as its data)."""
    return account_keys(prefix, account)[-1]


# KEYS: ACCOUNT_KEYS. ARGV[1]: fence token ("" = unfenced), ARGV[2]: operation.
WRITE = """
local fence = ARGV[1]
if fence ~= '' and redis.call('GET', KEYS[9]) ~= fence then
  return redis.error_reply('LEASE_LOST this process no longer holds the lease of this account')
end
local op = ARGV[2]
if op == 'accept' then
  redis.call('HSET', KEYS[1], 'cursor', ARGV[3])
  local window = tonumber(ARGV[4])
  local i = 5
  local n = tonumber(ARGV[i]); i = i + 1
  for _ = 1, n do
    local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    redis.call('HSET', KEYS[2], ARGV[i], seq .. ':' .. ARGV[i + 1])
    redis.call('HDEL', KEYS[3], ARGV[i])
    redis.call('RPUSH', KEYS[4], ARGV[i])
    i = i + 2
  end
  if n > 0 then redis.call('LTRIM', KEYS[4], -window, -1) end
  n = tonumber(ARGV[i]); i = i + 1
  for _ = 1, n do
    redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  n = tonumber(ARGV[i]); i = i + 1
  for _ = 1, n do
    local old = tonumber(redis.call('HGET', KEYS[6], ARGV[i]) or '0')
    if tonumber(ARGV[i + 1]) > old then redis.call('HSET', KEYS[6], ARGV[i], ARGV[i + 1]) end
    i = i + 2
  end
elseif op == 'done' then
  for i = 3, #ARGV do
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('HDEL', KEYS[3], ARGV[i])
  end
elseif op == 'fail' then
  if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then
    redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
  end
elseif op == 'dead' then
  redis.call('RPUSH', KEYS[7], ARGV[4])
  redis.call('HDEL', KEYS[2], ARGV[3])
  redis.call('HDEL', KEYS[3], ARGV[3])
elseif op == 'oput' then
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('HSET', KEYS[8], ARGV[3], seq .. ':' .. ARGV[4])
elseif op == 'odel' then
  redis.call('HDEL', KEYS[8], ARGV[3])
else
  return redis.error_reply('ERR unknown store operation ' .. op)
end
return 1
"""

# KEYS: ACCOUNT_KEYS. One consistent read of everything a monitor resumes from.
LOAD = """
return {
  redis.call('HGET', KEYS[1], 'cursor') or '',
  redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3]),
  redis.call('LRANGE', KEYS[4], 0, -1),
  redis.call('HGETALL', KEYS[5]),
  redis.call('HGETALL', KEYS[6]),
  redis.call('LRANGE', KEYS[7], 0, -1),
  redis.call('HGETALL', KEYS[8]),
}
"""

# KEYS[1]: lease. ARGV: token, ttl (ms). 1 when still ours (and extended), else 0.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS[1]: lease. ARGV: token. 1 when it was ours (and is now free), else 0.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

# KEYS[1]: the nodes zset. ARGV: node id, ttl (ms), leaving ("1" removes the node).
# Scores use the Redis server's clock, so the hosts' clocks do not need to agree.
HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# KEYS: stream, fanned (zset of lately published "<account> <id>"), same slot.
# ARGV: account, message id, message JSON, dedupe window (ms), lane key. A message published
# twice (a poller redelivering it after a crash or a hand-over) is added once.
PUBLISH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1] .. ' ' .. ARGV[2]
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
if redis.call('ZSCORE', KEYS[2], member) then
  return 0
end
redis.call('ZADD', KEYS[2], now, member)
redis.call('XADD', KEYS[1], '*', 'a', ARGV[1], 'id', ARGV[2], 'm', ARGV[3], 'k', ARGV[5])
return 1
"""

# KEYS: stream. ARGV: group, entry id. Acknowledge and delete (streams stay short).
ACK = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])
"""


def partition_keys(prefix: str, partition: int) -> tuple[str, str, str]:
    """Stream, dedupe set and worker lease of a fan-out partition (one slot)."""
    base = f"{prefix}:{{fanout-{partition}}}"
    return f"{base}:stream", f"{base}:fanned", f"{base}:lease"
