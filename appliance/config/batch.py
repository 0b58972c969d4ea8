"""Configuration of the Files and Batch APIs (``[batch]``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BatchConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Requests of one batch run at once (each through the whole pipeline).
    concurrency: int = Field(4, ge=1, le=256)
    #: Most requests (lines) accepted in one batch input file.
    max_requests: int = Field(50_000, ge=1)
    #: Largest uploaded file, in bytes (also bounded by server.max_body_bytes).
    max_file_bytes: int = Field(100 * 1024 * 1024, gt=0)
    #: Times a rate-limited item (HTTP 429) is retried after the limit's retry-after.
    rate_limit_retries: int = Field(3, ge=0)
    #: Send the lines whose model's provider has a batch API (OpenAI) in a batch of the
    #: provider's own, after the request stages, instead of calling it line by line.
    provider_batches: bool = True
    #: How often a provider's batch is polled (seconds).
    poll_interval_s: float = Field(10.0, gt=0)
    #: A batch whose runner has not reported for this long is failed (its process died).
    stale_after_s: float = Field(120.0, gt=0)
