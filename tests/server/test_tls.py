"""HTTPS and mutual TLS, with certificates made for the test."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from openai import OpenAI

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import (
    PASS_THROUGH,
    UPSTREAM_KEY_ENV,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)


def _cert(name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
          ca: bool = False, server: bool = False) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    c, k = path.with_suffix(".crt"), path.with_suffix(".key")
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return c, k


def test_https_with_client_certificates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca, ca_key = _cert("test-ca", None, ca=True)
    ca_name = ca.subject
    server_crt, server_key = _write(tmp_path / "server", *_cert("localhost", (ca_name, ca_key), server=True))
    client_crt, client_key = _write(tmp_path / "client", *_cert("billing-service", (ca_name, ca_key)))
    ca_pem = tmp_path / "ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    monkeypatch.setenv(UPSTREAM_KEY_ENV, "sk-up")
    with FakeOpenAI(api_key="sk-up").running() as fake:
        cfg = tmp_path / "tls.toml"
        cfg.write_text(to_toml(merge(
            openai_upstream("up", fake.base_url),
            PASS_THROUGH,
            {"server": {"tls_cert": str(server_crt), "tls_key": str(server_key),
                        "tls_client_ca": str(ca_pem)}},
        )))
        data = tmp_path / "data"
        key = create_key(data)
        with serve_subprocess(cfg, data) as server:
            assert server.url.startswith("https://")
            url = server.url.replace("127.0.0.1", "localhost") + "/v1"
            trust = ssl.create_default_context(cafile=str(ca_pem))
            trust.load_cert_chain(str(client_crt), str(client_key))
            with httpx.Client(verify=trust) as http:
                client = OpenAI(base_url=url, api_key=key, http_client=http, max_retries=0)
                r = client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "over tls"}]
                )
                assert r.choices[0].message.content == "echo: over tls"
            no_client_cert = ssl.create_default_context(cafile=str(ca_pem))
            with httpx.Client(verify=no_client_cert) as http, pytest.raises(httpx.HTTPError):
                http.get(server.url.replace("127.0.0.1", "localhost") + "/healthz")
