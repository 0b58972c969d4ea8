"""Single sign-on: OpenID Connect, authorization code flow with PKCE (RFC 7636, S256).

The console is the relying party. ``begin`` stores a fresh state, nonce and PKCE
verifier server-side (as digests of the state) and sends the browser to the provider;
``finish`` takes the state back once, redeems the code with the verifier, and accepts
the ID token only if its signature verifies under the provider's published keys and its
issuer, audience, times and nonce are right. The user's groups (from the ID token, or
the userinfo endpoint when the token carries none) map to console roles through
``[console.oidc] role_mapping``; a user with no mapped group is refused.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from appliance.config import secret
from appliance.config.console import OidcConfig
from appliance.console.deps import ConsoleDeps
from appliance.console.store import LoginState

_TIMEOUT = aiohttp.ClientTimeout(total=10)
#: Signature algorithms accepted for ID tokens (never "none", never HMAC with a public secret).
_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")


class OidcError(Exception):
    """A sign-in that cannot complete; ``reason`` is recorded (never a token)."""

    def __init__(self, reason: str, subject: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.subject = subject


@dataclass(frozen=True)
class Identity:
    username: str
    display_name: str
    roles: tuple[str, ...]
    tenant: str | None
    next_path: str


@dataclass
class _Provider:
    metadata: dict[str, Any]
    keys: KeySet
    fetched_at: float


_PROVIDERS: dict[str, _Provider] = {}
#: Provider metadata and keys are fetched again after this many seconds (key rotation).
_METADATA_TTL_S = 300.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def _get_json(http: aiohttp.ClientSession, url: str, **kw: Any) -> dict[str, Any]:
    try:
        async with http.get(url, **kw) as r:
            if r.status != 200:
                raise OidcError(f"http_{r.status}_from_provider")
            body: dict[str, Any] = await r.json(content_type=None)
            return body
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise OidcError("provider_unreachable") from None


async def provider(cfg: OidcConfig, *, refresh: bool = False) -> _Provider:
    cached = _PROVIDERS.get(cfg.issuer)
    if cached is not None and not refresh and time.monotonic() - cached.fetched_at < _METADATA_TTL_S:
        return cached
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as http:
        meta = await _get_json(http, cfg.issuer.rstrip("/") + "/.well-known/openid-configuration")
        if meta.get("issuer") != cfg.issuer:
            raise OidcError("issuer_mismatch_in_discovery")
        jwks = await _get_json(http, str(meta["jwks_uri"]))
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, KeyError):
        raise OidcError("unusable_provider_keys") from None
    found = _Provider(meta, keys, time.monotonic())
    _PROVIDERS[cfg.issuer] = found
    return found


def redirect_uri(cfg: OidcConfig, request: web.Request) -> str:
    if cfg.redirect_uri:
        return cfg.redirect_uri
    return f"{request.scheme}://{request.host}/console/oidc/callback"


async def begin(deps: ConsoleDeps, cfg: OidcConfig, request: web.Request, next_path: str) -> str:
    """The provider's authorization URL for a new sign-in (state stored server-side)."""
    meta = (await provider(cfg)).metadata
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    challenge = _b64(hashlib.sha256(verifier.encode()).digest())
    await asyncio.to_thread(deps.store.put_login, state, LoginState(nonce, verifier, next_path))
    scopes = ["openid", *[s for s in cfg.scopes if s != "openid"]]
    query = urlencode({
        "response_type": "code",
        "client_id": cfg.client_id,
        "redirect_uri": redirect_uri(cfg, request),
        "scope": " ".join(scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    })
    return f"{meta['authorization_endpoint']}?{query}"


async def finish(deps: ConsoleDeps, cfg: OidcConfig, request: web.Request) -> Identity:
    """Redeem the callback's code; the verified identity with its mapped roles."""
    q = request.query
    if "error" in q:
        raise OidcError("provider_error:" + str(q.get("error"))[:60])
    state, code = q.get("state"), q.get("code")
    if not state or not code:
        raise OidcError("missing_code_or_state")
    login = await asyncio.to_thread(deps.store.take_login, state)
    if login is None:
        raise OidcError("unknown_or_expired_state")
    prov = await provider(cfg)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri(cfg, request),
        "code_verifier": login.verifier,
        "client_id": cfg.client_id,
    }
    auth = None
    client_secret = secret(cfg.client_secret_env)
    if client_secret:
        auth = aiohttp.BasicAuth(cfg.client_id, client_secret)
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as http:
        try:
            async with http.post(str(prov.metadata["token_endpoint"]), data=form, auth=auth) as r:
                tokens: dict[str, Any] = await r.json(content_type=None)
                if r.status != 200:
                    raise OidcError(f"token_endpoint_{r.status}")
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise OidcError("provider_unreachable") from None
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("no_id_token")
        claims = _verified_claims(cfg, prov, id_token, login.nonce)
        if cfg.groups_claim not in claims and isinstance(tokens.get("access_token"), str) \
                and prov.metadata.get("userinfo_endpoint"):
            info = await _get_json(http, str(prov.metadata["userinfo_endpoint"]),
                                   headers={"Authorization": f"Bearer {tokens['access_token']}"})
            if info.get("sub") == claims.get("sub"):
                claims = {**info, **claims}
    return _identity(cfg, claims, login.next_path)


def _verified_claims(cfg: OidcConfig, prov: _Provider, id_token: str, nonce: str) -> dict[str, Any]:
    try:
        token = jwt.decode(id_token, prov.keys, algorithms=list(_ALGORITHMS))
    except (JoseError, ValueError):
        raise OidcError("id_token_signature_invalid") from None
    claims = dict(token.claims)
    registry = jwt.JWTClaimsRegistry(
        leeway=cfg.leeway_s,
        iss={"essential": True, "value": cfg.issuer},
        sub={"essential": True},
        exp={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as e:
        raise OidcError(f"id_token_claims_invalid:{type(e).__name__}", claims.get("sub")) from None
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if cfg.client_id not in audiences:
        raise OidcError("id_token_not_for_this_client", claims.get("sub"))
    if len(audiences) > 1 and claims.get("azp") != cfg.client_id:
        raise OidcError("id_token_azp_mismatch", claims.get("sub"))
    return claims


def _identity(cfg: OidcConfig, claims: dict[str, Any], next_path: str) -> Identity:
    sub = str(claims["sub"])
    name = claims.get(cfg.username_claim)
    username = str(name) if isinstance(name, str) and name else sub
    groups = claims.get(cfg.groups_claim) or []
    if isinstance(groups, str):
        groups = [groups]
    roles: list[str] = []
    for group in groups:
        for role in cfg.role_mapping.get(str(group), ()):
            if role not in roles:
                roles.append(role)
    if not roles:
        raise OidcError("no_mapped_group", username)
    tenant = claims.get(cfg.tenant_claim) if cfg.tenant_claim else None
    display = claims.get("name")
    return Identity(
        username=username,
        display_name=str(display) if isinstance(display, str) else username,
        roles=tuple(roles),
        tenant=str(tenant) if isinstance(tenant, str) and tenant else None,
        next_path=next_path,
    )
