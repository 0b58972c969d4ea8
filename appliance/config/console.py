"""Configuration of the compliance console (``[console]`` in the TOML file).

The console is the web UI for auditors, compliance officers and operators. Sign-in is
by local accounts (``appliance users create``) and, when ``[console.oidc]`` names an
issuer, by the organisation's OpenID Connect provider; its groups map to console roles.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The console's roles; every route names the ones that may use it (appliance/console/roles.py).
ROLES = ("admin", "auditor", "policy_author", "policy_approver", "tenant_viewer")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OidcConfig(_Frozen):
    #: Issuer URL of the identity provider; its ``/.well-known/openid-configuration`` is read.
    issuer: str
    #: Client id registered for the console at the provider.
    client_id: str
    #: Environment variable holding the client secret (None: a public client, PKCE only).
    client_secret_env: str | None = None
    #: Scopes asked for; ``openid`` is always included.
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    #: ID-token (or userinfo) claim that lists the user's groups.
    groups_claim: str = "groups"
    #: Provider group -> console roles, e.g. {"compliance" = ["auditor"]}. A user without a
    #: mapped group is refused.
    role_mapping: dict[str, tuple[str, ...]] = {}
    #: Claim that names the tenant of a ``tenant_viewer`` (None: such users get no tenant).
    tenant_claim: str | None = "tenant"
    #: Claim shown as the user's name (falls back to ``sub``).
    username_claim: str = "preferred_username"
    #: Label of the sign-in button.
    display_name: str = "single sign-on"
    #: Redirect URI registered at the provider (None: derived from the request's host).
    redirect_uri: str | None = None
    #: Seconds allowed for clock skew when checking the ID token's times.
    leeway_s: int = Field(60, ge=0)

    @field_validator("role_mapping")
    @classmethod
    def _known_roles(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for group, roles in value.items():
            for role in roles:
                if role not in ROLES:
                    raise ValueError(f"group {group!r}: unknown role {role!r} (known: {', '.join(ROLES)})")
        return value


class ConsoleConfig(_Frozen):
    #: Serve the console (at /console on the API port, or on ``listen``).
    enabled: bool = True
    #: "host:port" of the console's own listener (None: /console on the API port).
    listen: str | None = None
    #: Mark cookies Secure (browsers then send them over HTTPS and to localhost only).
    secure_cookies: bool = True
    #: Sign-in with local accounts (``appliance users create``).
    local_accounts: bool = True
    #: A session ends after this many seconds without a request.
    idle_timeout_s: int = Field(900, gt=0)
    #: ... and after this many seconds whatever happens.
    absolute_timeout_s: int = Field(8 * 3600, gt=0)
    #: Failed sign-ins in a row that lock a local account.
    max_failed_logins: int = Field(5, ge=1)
    #: How long a locked account stays locked, in seconds.
    lockout_s: int = Field(900, gt=0)
    #: Pages that read the audit log have running writers seal their segment when the
    #: console's view of the log is older than this (seconds; 0: on every page).
    audit_refresh_s: float = Field(10.0, ge=0)
    #: The console releases the audit log's files after this many idle seconds (a purge
    #: cannot thin a segment a reader holds).
    audit_idle_close_s: float = Field(120.0, gt=0)
    #: Rows on one page of the audit trail.
    page_size: int = Field(50, ge=1, le=1000)
    #: Policy replay: days of recorded decision inputs evaluated by default.
    replay_days: int = Field(7, ge=1)
    #: Policy replay: most recorded inputs evaluated (the newest first).
    replay_max_records: int = Field(50_000, ge=1)
    #: Language of the console for users who have not chosen one.
    default_language: Literal["en", "de"] = "en"
    #: Single sign-on through OpenID Connect (None: local accounts only).
    oidc: OidcConfig | None = None

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"listen must be host:port, got {value!r}")
        return value

    @model_validator(mode="after")
    def _timeouts(self) -> ConsoleConfig:
        if self.idle_timeout_s > self.absolute_timeout_s:
            raise ValueError("idle_timeout_s must not exceed absolute_timeout_s")
        return self

    @property
    def listen_address(self) -> tuple[str, int] | None:
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)
