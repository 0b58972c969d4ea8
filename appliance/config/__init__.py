"""Typed, frozen configuration: built-in defaults, overlaid by one TOML file.

The embedded ``defaults.toml`` is always loaded first; a user's file is deep-merged on
top of it, so declaring one external provider never removes the default local models,
policies or storage settings. Validation happens once, at load, and every mistake is
reported with its TOML path. Secrets are never in the file: fields ending in ``_env``
name the environment variable that holds them.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from appliance.config.audit import AuditConfig
from appliance.config.console import ConsoleConfig
from appliance.config.batch import BatchConfig
from appliance.errors import ConfigError
from appliance.config.limits import LimitsConfig
from appliance.config.mcp import McpConfig
from appliance.config.pii import PiiConfig
from appliance.config.policy import PolicyConfig
from appliance.config.risk import RiskConfig
from appliance.config.state import FleetConfig, StateConfig


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerConfig(_Frozen):
    #: Address to listen on ("0.0.0.0" for every interface).
    host: str = "127.0.0.1"
    #: TCP port (0 picks a free one and logs it).
    port: int = Field(8080, ge=0, le=65535)
    #: PEM certificate chain; with tls_key set, the server speaks HTTPS only.
    tls_cert: Path | None = None
    #: PEM private key of tls_cert.
    tls_key: Path | None = None
    #: CA bundle for client certificates; set means mutual TLS is required.
    tls_client_ca: Path | None = None
    #: Largest accepted request body, in bytes (larger gets HTTP 413).
    max_body_bytes: int = Field(8 * 1024 * 1024, gt=0)
    #: Largest accepted request head (all header names and values), in bytes (HTTP 431).
    max_header_bytes: int = Field(32 * 1024, ge=1024)
    #: Deepest accepted nesting of a JSON request body, arrays and objects (HTTP 400).
    max_json_depth: int = Field(64, ge=4, le=1000)
    #: Most messages (chat, Anthropic) or input items (Responses) in one request (HTTP 400).
    max_messages: int = Field(2048, ge=1)
    #: Largest total of inline media in one request (images, audio, files as base64 or
    #: data URLs in content parts), in characters (HTTP 413).
    max_multimodal_bytes: int = Field(6 * 1024 * 1024, ge=0)
    #: Environment variable holding the admin API key; unset variable disables the admin API.
    admin_key_env: str = "APPLIANCE_ADMIN_KEY"
    #: Server processes sharing the port (one per core is the usual choice).
    workers: int = Field(1, ge=1)
    #: Upper bound on one request's upstream wait, in seconds.
    request_timeout_s: float = Field(600.0, gt=0)
    #: Bound on a slow client (seconds): a connection must send a whole request head
    #: within it (slowloris; also the idle time allowed between two requests), the body
    #: must arrive within it (else 408), and each write of a streamed answer must be taken
    #: within it (a caller that stops reading is cut off; memory stays bounded by the
    #: socket's buffers).
    client_timeout_s: float = Field(30.0, gt=0)
    #: One line per request on the "appliance.access" logger (request id, key id, tenant,
    #: model, status, decision, duration; never content): "logfmt", "json" or "off".
    access_log: Literal["logfmt", "json", "off"] = "logfmt"
    #: Paths not logged (health probes and metrics scrapes would drown the rest).
    access_log_skip_paths: tuple[str, ...] = ("/healthz", "/readyz", "/metrics")

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be set together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        return self


class StorageConfig(_Frozen):
    #: Where keys, the audit log and built models live; relative paths resolve from the CWD.
    data_dir: Path = Path("data")


class PipelineConfig(_Frozen):
    """Which compliance stages run. Operators may switch them off; callers never can."""

    #: PII detection, redaction and restoration (pii_detect, redact, pii_output).
    redact: bool = True
    #: AI Act risk tagging and prompt safety screening.
    classify: bool = True
    #: The policy decision (OPA/Rego).
    decide: bool = True
    #: Rate limits, budgets and usage accounting.
    limits: bool = True
    #: Answer safety screening and the AI-generated-content disclosure.
    screen_output: bool = True
    #: The audit record (the system of record: switch off only for benchmarks).
    record: bool = True


class _ProviderBase(_Frozen):
    #: Recorded in the audit log and visible to policies (data residency), e.g. "eu", "us".
    region: str = "unknown"
    #: Bound on one whole upstream call (not streams: they are bounded by the silences).
    timeout_s: float = Field(120.0, gt=0)
    #: Bound on opening the connection (seconds).
    connect_timeout_s: float = Field(10.0, gt=0)
    #: Bound on the wait for the response headers, and for a stream's first event after
    #: them (seconds; None: ``timeout_s``): an upstream that stalls is given up on (504).
    first_byte_timeout_s: float | None = Field(None, gt=0)
    #: Bound on each later silence of a stream between two events (seconds; None:
    #: ``timeout_s``): a stream that stalls mid-way ends with an error event.
    idle_timeout_s: float | None = Field(None, gt=0)
    #: Retries on 429/5xx/connection errors/timeouts before falling back to the next model.
    max_retries: int = Field(2, ge=0)
    #: First back-off delay; doubles on every retry, with full jitter (a random delay up
    #: to the doubled value), never above ``retry_max_backoff_s``. An upstream's
    #: Retry-After is honoured instead when it is longer, up to ``retry_max_backoff_s``;
    #: a longer one moves on to the fallback at once.
    retry_backoff_s: float = Field(0.5, ge=0)
    #: Longest single wait between two attempts (seconds).
    retry_max_backoff_s: float = Field(30.0, ge=0)
    #: Circuit breaker: this many failed calls in a row (429, 5xx, timeouts, connection
    #: errors) open the provider's circuit; 0 turns the breaker off.
    breaker_failures: int = Field(5, ge=0)
    #: How long an open circuit refuses calls before one trial call is let through
    #: (seconds); calls meanwhile go to the fallbacks, or fail at once with a 503.
    breaker_open_s: float = Field(30.0, gt=0)


class OpenAIProviderConfig(_ProviderBase):
    kind: Literal["openai"]
    #: API root, including /v1 (any OpenAI-compatible server works).
    base_url: str = "https://api.openai.com/v1"
    #: Environment variable holding the API key (None: send no key).
    api_key_env: str | None = "OPENAI_API_KEY"
    #: Sent as OpenAI-Organization when set.
    organization: str | None = None


class AzureOpenAIProviderConfig(_ProviderBase):
    kind: Literal["azure_openai"]
    #: e.g. https://my-resource.openai.azure.com
    base_url: str
    #: Environment variable holding the resource's api-key.
    api_key_env: str | None = "AZURE_OPENAI_API_KEY"
    #: The api-version query parameter.
    api_version: str = "2024-10-21"


class AnthropicProviderConfig(_ProviderBase):
    kind: Literal["anthropic"]
    #: API root, without /v1.
    base_url: str = "https://api.anthropic.com"
    #: Environment variable holding the x-api-key.
    api_key_env: str | None = "ANTHROPIC_API_KEY"
    #: The anthropic-version header.
    anthropic_version: str = "2023-06-01"
    #: Anthropic requires max_tokens; used when the caller sets none.
    default_max_tokens: int = Field(4096, gt=0)


class BedrockProviderConfig(_ProviderBase):
    kind: Literal["bedrock"]
    #: AWS region of the Bedrock runtime endpoint (part of the SigV4 scope).
    aws_region: str = "eu-central-1"
    #: Defaults to https://bedrock-runtime.{aws_region}.amazonaws.com
    base_url: str | None = None
    #: Environment variables holding the AWS credentials used for SigV4 signing.
    access_key_id_env: str = "AWS_ACCESS_KEY_ID"
    #: See access_key_id_env.
    secret_access_key_env: str = "AWS_SECRET_ACCESS_KEY"
    #: Temporary credentials' session token (None: not used).
    session_token_env: str | None = "AWS_SESSION_TOKEN"


class VertexProviderConfig(_ProviderBase):
    kind: Literal["vertex"]
    #: Google Cloud project id.
    project: str
    #: Vertex AI location (region) serving the model.
    location: str = "europe-west4"
    #: Defaults to https://{location}-aiplatform.googleapis.com
    base_url: str | None = None
    #: Environment variable naming a service-account JSON file (google-auth reads it).
    credentials_file_env: str | None = "GOOGLE_APPLICATION_CREDENTIALS"
    #: Alternatively a static bearer token (tests, or tokens minted elsewhere).
    access_token_env: str | None = None


class HFEndpointProviderConfig(_ProviderBase):
    kind: Literal["hf_endpoint"]
    #: The endpoint URL; it serves the OpenAI-compatible Messages API under /v1.
    base_url: str
    #: Environment variable holding the Hugging Face token.
    api_key_env: str | None = "HF_TOKEN"


class LocalProviderConfig(_ProviderBase):
    kind: Literal["local"]
    region: str = "on-premises"
    #: Directory that holds one sub-directory per model, each with a model.yaml manifest.
    models_dir: Path = Path("models")
    #: Execution providers in order of preference; unavailable ones are skipped.
    execution_providers: tuple[str, ...] = ("CUDAExecutionProvider", "CPUExecutionProvider")
    #: Concurrent sequences decoded together by the local scheduler.
    max_batch_size: int = Field(8, ge=1)
    #: ONNX Runtime intra-op threads per model (None: one per core).
    intra_op_threads: int | None = Field(None, ge=1)
    #: Threads for tokenizing and embedding, off the event loop.
    worker_threads: int = Field(2, ge=1)
    #: Load every model under models_dir at start-up (else on first request).
    preload: bool = True
    #: Build the built-in models (local-chat, local-embed) offline when they are missing.
    build_missing: bool = True
    #: Most strings accepted in one /v1/embeddings request.
    max_embedding_inputs: int = Field(2048, ge=1)


ProviderConfig = Annotated[
    OpenAIProviderConfig
    | AzureOpenAIProviderConfig
    | AnthropicProviderConfig
    | BedrockProviderConfig
    | VertexProviderConfig
    | HFEndpointProviderConfig
    | LocalProviderConfig,
    Field(discriminator="kind"),
]


class ModelConfig(_Frozen):
    #: Name of the [providers.NAME] table that serves this model.
    provider: str
    #: Name sent upstream (deployment name for Azure, model id for Bedrock); defaults to the key.
    upstream_model: str | None = None
    #: chat models also serve /v1/completions; embedding models serve /v1/embeddings.
    task: Literal["chat", "completion", "embedding", "classification"] = "chat"
    #: Models tried in order when this one fails upstream.
    fallbacks: tuple[str, ...] = ()
    #: Largest context the model accepts, in tokens (None: the provider decides).
    context_length: int | None = Field(None, gt=0)
    #: Upper bound for max_tokens on this model (None: no cap).
    max_output_tokens: int | None = Field(None, gt=0)
    #: Shown by `appliance models list` and in reports.
    description: str = ""


class Config(_Frozen):
    server: ServerConfig = ServerConfig()
    storage: StorageConfig = StorageConfig()
    pipeline: PipelineConfig = PipelineConfig()
    providers: dict[str, ProviderConfig] = {}
    models: dict[str, ModelConfig] = {}
    pii: PiiConfig = PiiConfig()
    policy: PolicyConfig = PolicyConfig()
    risk: RiskConfig = RiskConfig()
    audit: AuditConfig = AuditConfig()
    limits: LimitsConfig = LimitsConfig()
    console: ConsoleConfig = ConsoleConfig()
    state: StateConfig = StateConfig()
    fleet: FleetConfig = FleetConfig()
    mcp: McpConfig = McpConfig()
    batch: BatchConfig = BatchConfig()

    @model_validator(mode="after")
    def _references(self) -> Config:
        for name, model in self.models.items():
            if model.provider not in self.providers:
                raise ValueError(
                    f"models.{name}.provider: unknown provider {model.provider!r} "
                    f"(declared: {', '.join(sorted(self.providers)) or 'none'})"
                )
            for fb in model.fallbacks:
                if fb not in self.models:
                    raise ValueError(f"models.{name}.fallbacks: unknown model {fb!r}")
                if fb == name:
                    raise ValueError(f"models.{name}.fallbacks: a model cannot fall back to itself")
        return self

    def upstream_name(self, model: str) -> str:
        return self.models[model].upstream_model or model

    def resolve(self, path: Path) -> Path:
        """Resolve a data path: absolute stays, relative is under ``storage.data_dir``."""
        return path if path.is_absolute() else self.storage.data_dir / path


def secret(env_name: str | None) -> str | None:
    """Read a secret from the environment variable the config names."""
    return os.environ.get(env_name) if env_name else None


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _format_validation(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-after"))
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def embedded_defaults() -> dict[str, Any]:
    text = resources.files("appliance.config").joinpath("defaults.toml").read_text("utf-8")
    return tomllib.loads(text)


def load_config(
    path: Path | None = None,
    *,
    data_dir: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """Load the embedded defaults, overlay ``path`` and ``overrides``, validate once.

    Raises :class:`ConfigError` with every problem and its TOML path.
    """
    raw = embedded_defaults()
    source = "built-in defaults"
    if path is not None:
        try:
            user = tomllib.loads(Path(path).read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
        raw = _deep_merge(raw, user)
        source = str(path)
    if overrides:
        raw = _deep_merge(raw, overrides)
    if data_dir is not None:
        raw = _deep_merge(raw, {"storage": {"data_dir": str(data_dir)}})
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_validation(e, source)) from None
