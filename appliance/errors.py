"""The one exception tree of the appliance.

Every error a client may see is an :class:`ApplianceError`; foreign exceptions are
translated into one of these at a boundary (the server's error middleware, or the
provider adapter that caught them). Messages never carry prompts, keys or PII.
"""

from __future__ import annotations


class ApplianceError(Exception):
    """Base of every error the appliance renders to a client."""

    status: int = 500
    type: str = "server_error"
    anthropic_type: str = "api_error"
    code: str | None = None
    #: Why a control refused the request (policy texts, never request content).
    reasons: tuple[str, ...] = ()

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(ApplianceError):
    status = 400
    type = "invalid_request_error"
    anthropic_type = "invalid_request_error"


class AuthenticationFailed(ApplianceError):
    status = 401
    type = "authentication_error"
    anthropic_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ApplianceError):
    """A policy (or a role check) refused the request."""

    status = 403
    type = "permission_error"
    anthropic_type = "permission_error"
    code = "policy_denied"

    def __init__(self, message: str, *, reasons: tuple[str, ...] = (), **kw: str | None) -> None:
        super().__init__(message, **kw)
        self.reasons = reasons


class NotFound(ApplianceError):
    status = 404
    type = "invalid_request_error"
    anthropic_type = "not_found_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class RequestTimeout(ApplianceError):
    """The client sent its request too slowly (``server.client_timeout_s``)."""

    status = 408
    type = "invalid_request_error"
    anthropic_type = "invalid_request_error"
    code = "request_timeout"


class PayloadTooLarge(ApplianceError):
    status = 413
    type = "invalid_request_error"
    anthropic_type = "request_too_large"
    code = "request_too_large"


class HeadersTooLarge(ApplianceError):
    status = 431
    type = "invalid_request_error"
    anthropic_type = "invalid_request_error"
    code = "request_header_fields_too_large"


class RateLimited(ApplianceError):
    status = 429
    type = "rate_limit_error"
    anthropic_type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: str | None) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class UnsupportedOperation(InvalidRequest):
    """The model's provider cannot do what was asked (e.g. embeddings on a chat model)."""

    code = "unsupported_operation"


class UpstreamError(ApplianceError):
    """The upstream provider failed; ``retryable`` marks 429/5xx/connection errors."""

    status = 502
    type = "upstream_error"
    anthropic_type = "api_error"
    code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        retryable: bool = False,
        retry_after_s: float | None = None,
        **kw: str | None,
    ) -> None:
        super().__init__(message, **kw)
        self.upstream_status = upstream_status
        self.retryable = retryable
        #: The upstream's Retry-After (seconds), when it sent one.
        self.retry_after_s = retry_after_s


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, retryable=True, param=param, code=code)


class UpstreamUnavailable(UpstreamError):
    """The provider's circuit is open (it failed too often just now): refused at once,
    nothing sent; ``retry_after_s`` says when the next trial call goes through."""

    status = 503
    code = "upstream_unavailable"


class AuditUnavailable(ApplianceError):
    """The audit log cannot take records now (disk full, read-only, failing): a request
    is refused before anything goes upstream, because it could not be recorded."""

    status = 503
    type = "server_error"
    anthropic_type = "overloaded_error"
    code = "audit_unavailable"


class StageFailed(ApplianceError):
    """A compliance stage broke; the request fails closed."""

    status = 503
    type = "server_error"
    anthropic_type = "api_error"
    code = "stage_failed"


class ConfigError(Exception):
    """The configuration is invalid; raised at load time, never at request time."""


class EngineUnavailable(ApplianceError):
    """A shared engine of a fleet (PostgreSQL, Redis, object storage) cannot be reached
    and its configured failure mode is to refuse (fail closed)."""

    status = 503
    type = "server_error"
    anthropic_type = "overloaded_error"
    code = "engine_unavailable"
