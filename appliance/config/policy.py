"""Configuration of the policy decision point (``[policy]`` in the TOML file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PolicyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Directory with the Rego modules, their ``*_test.rego`` tests and ``data/*.yaml|json``
    #: (unset: the policies shipped with the appliance). Policy switches live in that data,
    #: not here: e.g. ``data/ai_act.yaml`` ``ai_act.unregistered_high_risk`` (allow | deny)
    #: serves or refuses high-risk use from unregistered applications (docs/policy-input.md).
    dir: Path | None = None
    #: "embedded": evaluate in-process (see ``evaluator``); "opa": ask an OPA server over REST.
    engine: Literal["embedded", "opa"] = "embedded"
    #: Which engine evaluates embedded decisions. "regorus": the decision rule compiled to a
    #: regorus VM program (tens of µs), with regopy checking each revision and deciding
    #: whatever the VM cannot; "regopy": rego-cpp alone (~0.7 ms). Tests, coverage and
    #: ad-hoc queries always run on regopy.
    evaluator: Literal["regorus", "regopy"] = "regorus"
    #: Base URL of the OPA server used when ``engine = "opa"``.
    opa_url: str = "http://127.0.0.1:8181"
    #: Upper bound on one OPA round trip, in seconds; slower means deny (fail closed).
    opa_timeout_s: Annotated[float, Field(gt=0)] = 1.0
    #: Environment variable holding a bearer token for the OPA server (unset: none).
    opa_token_env: str | None = None
    #: Rego package that holds the decision rule.
    package: str = "appliance.main"
    #: Rule in ``package`` that returns ``{allow, reasons, obligations, rules}``.
    entrypoint: str = "decision"
    #: Evaluate embedded decisions on the engine's own worker thread instead of inline on
    #: the event loop. Off by default: a decision of the shipped set takes well under 0.1 ms inline,
    #: while the thread hop adds latency (milliseconds on a busy 2-core host).
    offload: bool = False
    #: How often the embedded engine looks for changed policy or data files, in seconds.
    reload_interval_s: Annotated[float, Field(gt=0)] = 1.0
    #: Where the fleet's policy comes from: a signed OPA bundle (``appliance policy bundle
    #: build``) at an http(s):// URL, ``s3://bucket/key`` or a path (None: ``dir``). Polled
    #: with ETag; a new bundle is verified, compiled and tested before it is swapped in.
    bundle_url: str | None = None
    #: PEM public key (EC P-256) bundles must be signed with; relative to the data dir.
    bundle_public_key_file: Path | None = None
    #: The key id the bundle's signature must name (``keyid``, as OPA's verification config).
    bundle_key_id: str = "appliance"
    #: Seconds between two polls of ``bundle_url``.
    bundle_poll_s: Annotated[float, Field(gt=0)] = 10.0

    @model_validator(mode="after")
    def _bundle_key(self) -> PolicyConfig:
        if self.bundle_url is not None and self.bundle_public_key_file is None:
            raise ValueError("bundle_url needs bundle_public_key_file (the key bundles are signed with)")
        if self.bundle_url is not None and self.engine != "embedded":
            raise ValueError("bundle_url is for the embedded engine (an OPA server polls its own bundles)")
        return self

    @property
    def directory(self) -> Path:
        """The policy directory in force: the configured one, else the shipped one."""
        from appliance.shipped import shipped

        return self.dir if self.dir is not None else shipped("policies")
