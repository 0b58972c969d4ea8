"""The ``redis`` backend: counters shared by every replica through one Redis server.

``admit`` and ``charge`` are one Lua script each call, which Redis runs atomically: no
other replica's request can slip between the check and the increment. Each bucket is its
own key with an expiry, so nothing needs cleaning up. Redis persists the counters
(RDB/AOF, as configured on the server), so they survive a restart of the appliance.

The URL picks the topology: ``redis://`` / ``rediss://`` / ``unix://`` one server;
``redis+sentinel://host1:26379,host2:26379/<master name>/<db>`` a primary found through
Sentinel (a failover is followed); ``redis+cluster://host:6379`` Redis Cluster. On a
cluster the prefix becomes a hash tag (``{appliance}:...``): a request's counters are
checked and counted by one script, which Cluster allows only within one slot, so every
counter lives on one shard (exact, not sharded).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from appliance.metering.store import Charge, CounterStoreUnavailable, Item, Outcome, UsageRow

#: Bound on connecting to Redis and on one command, in seconds: an outage must answer
#: (fail closed, or open where configured), never hang the request.
_TIMEOUT_S = 2.0

#: KEYS: one counter key per item, then (``charge``) the usage hash of the hour. ARGV[1]:
#: "1" to check limits; ARGV[2]: the number of items; then per item: amount, limit (-1:
#: none), first bucket, bucket, ttl seconds, window seconds (0: none); then (with a usage
#: hash) its ttl and field, increment pairs. One script call books a whole settlement: a
#: MULTI pipeline of the script and each HINCRBY cost the caller ~0.1 ms more CPU a request.
#: Returns "admitted,refused index or 0,now s,now us" then per item ",total,oldest,bucket".
#: Windowed items take their bucket from the Redis server's clock, so every replica
#: counts on one clock and no request reads a window older than a count already made.
_APPLY = """
-- One comma-separated string, not an array: the client parses one reply line, not 16.
local function packed(out)
  local s = {}
  for i = 1, #out do s[i] = string.format('%d', tonumber(out[i])) end
  return table.concat(s, ',')
end
local check = ARGV[1] == '1'
local n = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1])
local totals, oldest, buckets = {}, {}, {}
for i = 1, n do
  local base = 2 + (i - 1) * 6
  local first, last = tonumber(ARGV[base + 3]), tonumber(ARGV[base + 4])
  local window = tonumber(ARGV[base + 6])
  if window > 0 then
    last = now
    first = now - window + 1
  end
  buckets[i] = last
  local total, old = 0, -1
  -- A window's buckets in MGETs of at most 1000 (one call into Redis, not one a bucket).
  for from = first, last, 1000 do
    local upto = math.min(from + 999, last)
    local names = {}
    for b = from, upto do names[#names + 1] = KEYS[i] .. ':' .. b end
    local values = redis.call('MGET', unpack(names))
    for j = 1, #names do
      local v = values[j]
      if v then
        v = tonumber(v)
        total = total + v
        if old < 0 and v > 0 then old = from + j - 1 end
      end
    end
  end
  totals[i], oldest[i] = total, old
end
if check then
  for i = 1, n do
    local base = 2 + (i - 1) * 6
    local amount, limit = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
    if limit >= 0 and totals[i] + amount > limit then
      local out = {0, i, t[1], t[2]}
      for j = 1, n do
        out[#out + 1] = totals[j]; out[#out + 1] = oldest[j]; out[#out + 1] = buckets[j]
      end
      return packed(out)
    end
  end
end
local out = {1, 0, t[1], t[2]}
for i = 1, n do
  local base = 2 + (i - 1) * 6
  local amount, last, ttl = tonumber(ARGV[base + 1]), buckets[i], tonumber(ARGV[base + 5])
  if amount ~= 0 then
    local k = KEYS[i] .. ':' .. last
    redis.call('INCRBY', k, ARGV[base + 1])
    if redis.call('TTL', k) < ttl then redis.call('EXPIRE', k, ttl) end
    totals[i] = totals[i] + amount
    if oldest[i] < 0 and amount > 0 then oldest[i] = tonumber(last) end
  end
  out[#out + 1] = totals[i]; out[#out + 1] = oldest[i]; out[#out + 1] = buckets[i]
end
if #KEYS > n then
  local usage, at = KEYS[n + 1], 3 + n * 6
  for j = at + 1, #ARGV, 2 do
    redis.call('HINCRBY', usage, ARGV[j], ARGV[j + 1])
  end
  redis.call('EXPIRE', usage, ARGV[at])
end
return packed(out)
"""


class RedisCounterStore:
    #: Across the network: the meter books settlements without holding up the answer.
    remote = True

    def __init__(
        self, url: str, *, prefix: str = "appliance", password: str | None = None,
        retention_days: int = 400, max_connections: int = 64,
    ) -> None:
        self._max_connections = max_connections
        self._url = url
        self._password = password
        self._prefix = prefix
        self._retention_s = retention_days * 86400
        self._redis: Redis | None = None
        self._script: Any = None

    async def start(self) -> None:
        kw: dict[str, Any] = {"password": self._password} if self._password else {}
        timeouts = {"socket_timeout": _TIMEOUT_S, "socket_connect_timeout": _TIMEOUT_S}
        if self._url.startswith("redis+sentinel://"):
            self._redis = _sentinel_master(self._url, kw, timeouts)
        elif self._url.startswith(("redis+cluster://", "rediss+cluster://")):
            from redis.asyncio.cluster import RedisCluster

            self._prefix = "{" + self._prefix.strip("{}") + "}"
            self._redis = RedisCluster.from_url(  # type: ignore[assignment]
                self._url.replace("+cluster", ""), **kw, **timeouts)
        else:
            # Blocking pool: a burst of requests waits for a connection instead of failing.
            pool = BlockingConnectionPool.from_url(
                self._url, max_connections=self._max_connections, timeout=10, **kw, **timeouts
            )
            self._redis = Redis(connection_pool=pool)
        await self._redis.ping()
        self._script = self._redis.register_script(_APPLY)

    async def ping(self) -> bool:
        """For /readyz and doctor: does the counter store answer now?"""
        try:
            return bool(await self.redis.ping())
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return False

    async def aclose(self) -> None:
        r, self._redis = self._redis, None
        if r is not None:
            await r.aclose(close_connection_pool=True)

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("the limits store is not started")
        return self._redis

    def _args(self, items: Sequence[Item], check: bool) -> tuple[list[str], list[Any]]:
        keys = [f"{self._prefix}:c:{it.key}" for it in items]
        args: list[Any] = ["1" if check else "0", len(items)]
        for it in items:
            args += [
                it.amount, -1 if it.limit is None else it.limit, it.first, it.bucket, it.ttl_s,
                it.window_s,
            ]
        return keys, args

    async def admit(self, items: Sequence[Item]) -> Outcome:
        if not items:
            return Outcome(True, (), ())
        keys, args = self._args(items, True)
        try:
            return _outcome(await self._script(keys=keys, args=args))
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            raise CounterStoreUnavailable(type(e).__name__) from None

    async def charge(self, charge: Charge) -> Outcome:
        keys, args = self._args(charge.items, False)
        if charge.usage is not None:
            row = charge.usage
            keys.append(f"{self._prefix}:u:{row.hour}")
            args.append(self._retention_s)
            dims = [getattr(row, d) for d in UsageRow.DIMENSIONS]
            for m in UsageRow.MEASURES:
                value = getattr(row, m)
                if value:
                    args += [json.dumps([*dims, m]), value]
        if not keys:
            return Outcome(True, (), ())
        try:
            return _outcome(await self._script(keys=keys, args=args))
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            raise CounterStoreUnavailable(type(e).__name__) from None

    async def once(self, flag: str, ttl_s: int) -> bool:
        return bool(await self.redis.set(f"{self._prefix}:f:{flag}", b"1", nx=True, ex=max(1, ttl_s)))

    async def usage(self, first_hour: int, last_hour: int) -> list[UsageRow]:
        rows: list[UsageRow] = []
        hours = list(range(first_hour, last_hour + 1))
        for start in range(0, len(hours), 500):
            batch = hours[start : start + 500]
            pipe = self.redis.pipeline(transaction=False)
            for h in batch:
                pipe.hgetall(f"{self._prefix}:u:{h}")
            for hour, fields in zip(batch, await pipe.execute(), strict=True):
                rows.extend(_rows(hour, fields))
        return rows


def _outcome(reply: bytes) -> Outcome:
    raw = reply.split(b",")
    admitted, refused = int(raw[0]) == 1, int(raw[1])
    now = int(raw[2]) + int(raw[3]) / 1e6
    per = [int(v) for v in raw[4:]]
    totals = tuple(per[0::3])
    oldest = tuple(None if v < 0 else v for v in per[1::3])
    buckets = tuple(per[2::3])
    return Outcome(admitted, totals, oldest, buckets, now, refused=None if admitted else refused - 1)


def _rows(hour: int, fields: dict[bytes, bytes]) -> list[UsageRow]:
    grouped: dict[tuple[str, ...], dict[str, Any]] = {}
    for raw_key, raw_value in fields.items():
        *dims, measure = json.loads(raw_key)
        grouped.setdefault(tuple(dims), {})[measure] = int(raw_value)
    rows = []
    for dims, measures in grouped.items():
        named: dict[str, Any] = dict(zip(UsageRow.DIMENSIONS, dims, strict=True))
        rows.append(UsageRow(hour=hour, **named, **measures))
    return rows


def _sentinel_master(url: str, kw: dict[str, Any], timeouts: dict[str, float]) -> Redis:
    """``redis+sentinel://h1:26379,h2:26379/<master>/<db>``: the primary Sentinel names."""
    from urllib.parse import urlsplit

    from redis.asyncio.sentinel import Sentinel

    parts = urlsplit(url)
    hosts = []
    for hostport in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = hostport.partition(":")
        hosts.append((host, int(port or 26379)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError("a Sentinel URL names the master: redis+sentinel://host:26379/<master>/<db>")
    db = int(path[1]) if len(path) > 1 else 0
    sentinel = Sentinel(hosts, **timeouts)
    return sentinel.master_for(path[0], db=db, **kw, **timeouts)
