"""Checks of the appliance's edges: upstream credentials, TLS files, the listening port."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import socket
import ssl
import urllib.request
from collections.abc import Iterator

from appliance.config import (
    BedrockProviderConfig,
    LocalProviderConfig,
    ProviderConfig,
    VertexProviderConfig,
)
from appliance.doctor.outcome import Outcome, Setup, fail, ok, warn

#: A certificate that expires sooner than this is worth a warning.
_CERT_WARN_DAYS = 30


def _missing_env(provider: ProviderConfig) -> Iterator[str]:
    """Environment variables the provider needs that are unset (names only, never values)."""
    if isinstance(provider, BedrockProviderConfig):
        for env in (provider.access_key_id_env, provider.secret_access_key_env):
            if not os.environ.get(env):
                yield f"${env}"
        return
    if isinstance(provider, VertexProviderConfig):
        options = [e for e in (provider.credentials_file_env, provider.access_token_env) if e]
        if options and not any(os.environ.get(e) for e in options):
            yield " or ".join(f"${e}" for e in options)
        creds = provider.credentials_file_env and os.environ.get(provider.credentials_file_env)
        if creds and not os.access(creds, os.R_OK):
            yield f"a readable file at ${provider.credentials_file_env}"
        return
    api_key_env = getattr(provider, "api_key_env", None)  # OpenAI-like and Anthropic adapters
    if api_key_env and not os.environ.get(api_key_env):
        yield f"${api_key_env}"


def check_providers(setup: Setup) -> Outcome:
    config = setup.config
    used = {m.provider for m in config.models.values()}
    failing, unused_missing, fine = [], [], []
    for name, provider in sorted(config.providers.items()):
        if isinstance(provider, LocalProviderConfig):
            continue
        missing = list(_missing_env(provider))
        if not missing:
            fine.append(name)
        elif name in used:
            failing.append(f"{name} needs {', '.join(missing)}")
        else:
            unused_missing.append(f"{name} (no model uses it) lacks {', '.join(missing)}")
    if not (fine or failing or unused_missing):
        return ok("no external providers declared (local models need no credentials)")
    summary = f"credentials set for: {', '.join(fine) or 'none'}"
    if failing:
        return fail(f"{'; '.join(failing)} (unset in this environment); {summary}",
                    "set the variables in the service's environment (systemd EnvironmentFile, "
                    "Kubernetes secret); the config names variables, never values")
    if unused_missing:
        return warn(f"{'; '.join(unused_missing)}; {summary}", "set the variable or remove the provider")
    return ok(summary)


def check_tls(setup: Setup) -> Outcome:
    from cryptography import x509

    from appliance.server.run import ssl_context

    server = setup.config.server
    if server.tls_cert is None or server.tls_key is None:
        if server.host in ("127.0.0.1", "::1", "localhost"):
            return ok(f"TLS off, listening on loopback {server.host} only")
        return warn(f"TLS off while listening on {server.host}: keys and prompts cross the network in clear",
                    "set [server] tls_cert and tls_key, or terminate TLS in a proxy on the same host")
    files = [server.tls_cert, server.tls_key] + ([server.tls_client_ca] if server.tls_client_ca else [])
    unreadable = [str(f) for f in files if not os.access(f, os.R_OK)]
    if unreadable:
        return fail(f"cannot read {', '.join(unreadable)}",
                    "check the path and that the service user may read it")
    try:
        cert = x509.load_pem_x509_certificate(server.tls_cert.read_bytes())
        ssl_context(setup.config)  # the server's own loader: key matches cert, CA parses
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        return fail(f"{server.tls_cert} / {server.tls_key} do not load: {type(e).__name__}: {str(e)[:160]}",
                    "a PEM certificate chain and its matching private key are needed")
    expires = cert.not_valid_after_utc
    left = expires - dt.datetime.now(dt.UTC)
    subject = cert.subject.rfc4514_string()
    mtls = ", client certificates required" if server.tls_client_ca else ""
    if left.total_seconds() <= 0:
        return fail(f"certificate {subject} expired on {expires:%Y-%m-%d}", "renew the certificate")
    if left.days < _CERT_WARN_DAYS:
        return warn(f"certificate {subject} expires in {left.days} days ({expires:%Y-%m-%d}){mtls}",
                    "renew the certificate")
    return ok(f"certificate {subject} valid until {expires:%Y-%m-%d}{mtls}")


def _appliance_answers(host: str, port: int, tls: bool) -> bool:
    """Is the process holding the port a running appliance (GET /healthz)?"""
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    if ":" in probe_host:
        probe_host = f"[{probe_host}]"
    url = f"{'https' if tls else 'http'}://{probe_host}:{port}/healthz"
    context = ssl._create_unverified_context() if tls else None  # loopback probe, no data sent
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as r:  # noqa: S310 - fixed scheme
            return bool(json.loads(r.read()).get("status") == "ok")
    except (OSError, ValueError):
        return False


def check_port(setup: Setup) -> Outcome:
    server = setup.config.server
    if server.port == 0:
        return ok("port 0: a free port is picked at start and logged")
    family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
    where = f"{server.host}:{server.port}"
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            sock.bind((server.host, server.port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            if _appliance_answers(server.host, server.port, server.tls_cert is not None):
                return ok(f"{where} is served by a running appliance (/healthz answers)")
            return fail(f"{where} is in use by another program",
                        "stop it, or set [server] port / appliance serve --port")
        if e.errno == errno.EACCES:
            return fail(f"{where}: binding needs privileges ({e.strerror})",
                        "use a port above 1023, or grant CAP_NET_BIND_SERVICE")
        return fail(f"{where} cannot be bound: {e.strerror}", "check [server] host: an address of this host")
    return ok(f"{where} is free")
