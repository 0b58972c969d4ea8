"""Usage metering, cost, budgets, rate limits and metrics.

- :mod:`.meter`: admission before the model call (rate limits, budgets, ``x-ratelimit-*``
  headers, HTTP 429) and settlement after it (real tokens and cost, usage rows, budget
  notifications, metrics). :class:`appliance.pipeline.limits.LimitsStage` is its face.
- :mod:`.store`, :mod:`.sqlite_store`, :mod:`.redis_store`: exact counters that survive a
  restart; SQLite in the data directory (``local``) or Redis shared by replicas.
- :mod:`.prices`, :mod:`.plans` and ``data/*.yaml``: price table and plans as data.
- :mod:`.usage`, :mod:`.commands`: ``appliance usage`` (grouped usage, forecast, overage).
- :mod:`.metrics`: ``GET /metrics`` (Prometheus); :mod:`.tracing`: optional OpenTelemetry.
"""
