"""How far a streamed answer got: what the pipeline counts while the provider's chunks
pass, so a stream that ends early (the upstream broke off, the caller went away) is still
billed for what was generated and recorded as partial."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.core.context import StateKey


@dataclass(slots=True)
class StreamProgress:
    #: Chunks the provider sent.
    chunks: int = 0
    #: Characters of answer text (content and tool-call arguments) in them.
    chars: int = 0
    #: Whether the provider reported the usage (it does in its last chunk).
    usage_reported: bool = False
    #: Whether the usage in the record is an estimate from ``chars`` (no usage arrived).
    estimated: bool = False

    def partial(self, status: int) -> bool:
        """The stream carried some answer and then did not end well."""
        return self.chunks > 0 and status >= 400


STREAMED: StateKey[StreamProgress] = StateKey("pipeline.streamed")
