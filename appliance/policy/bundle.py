"""OPA bundles: the policy set as one signed ``.tar.gz`` that every replica (and a real
OPA) loads unchanged.

The archive holds what ``opa build`` writes: ``/.manifest`` (``revision`` and ``roots``),
the Rego modules (tests included: to OPA they are ordinary rules), one ``/data.json``
with the merged data documents, and ``/.signatures.json``: a JWS (ES256) whose payload
lists every other file with its SHA-256, hashed as OPA hashes them (JSON documents as
their sorted-key structure, everything else as bytes; see OPA's ``bundle/hash.go``).
A replica accepts a bundle only if that signature verifies under the key it trusts,
the listed files are exactly the files present and every hash matches.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from appliance.policy.source import PolicyLoadError, PolicySource

MANIFEST = ".manifest"
SIGNATURES = ".signatures.json"
DATA = "data.json"
ALGORITHM = "ES256"
#: Decompressed size above which a bundle is refused (a zip bomb is not a policy set).
MAX_BYTES = 64 * 1024 * 1024


class BundleRejected(PolicyLoadError):
    """The bundle is unsigned, signed by another key, altered, or not a bundle."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _primitive(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _walk(value: Any, h: Any) -> None:
    """OPA's structural hash of a JSON document (objects by sorted key, compact)."""
    if isinstance(value, dict):
        h.update(b"{")
        for i, key in enumerate(sorted(value)):
            if i:
                h.update(b",")
            h.update(_primitive(key) + b":")
            _walk(value[key], h)
        h.update(b"}")
    elif isinstance(value, list):
        h.update(b"[")
        for i, item in enumerate(value):
            if i:
                h.update(b",")
            _walk(item, h)
        h.update(b"]")
    else:
        h.update(_primitive(value))


def _structured(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base in (DATA, MANIFEST)


def file_hash(name: str, content: bytes) -> str:
    h = hashlib.sha256()
    if _structured(name):
        try:
            _walk(json.loads(content), h)
        except json.JSONDecodeError:
            raise BundleRejected(f"bundle file {name} is not valid JSON") from None
    else:
        h.update(content)
    return h.hexdigest()


def roots_of(source: PolicySource) -> list[str]:
    """Top-level names the bundle owns: each package's first segment and each data key."""
    roots = set(source.data)
    for text in [*source.modules.values(), *source.tests.values()]:
        for line in text.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "package":
                roots.add(words[1].split(".")[0])
                break
    return sorted(roots)


def _sign(payload: Mapping[str, Any], private_pem: bytes, key_id: str) -> str:
    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the bundle signing key must be an EC P-256 private key (ES256)")
    header = _b64url(json.dumps({"alg": ALGORITHM, "kid": key_id, "typ": "JWT"}).encode())
    body = _b64url(json.dumps(payload, separators=(",", ":")).encode())
    der = key.sign(f"{header}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{header}.{body}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _verify(token: str, public_pem: bytes) -> dict[str, Any]:
    try:
        header_b64, body_b64, sig_b64 = token.split(".")
        header = json.loads(_unb64url(header_b64))
        payload = json.loads(_unb64url(body_b64))
        sig = _unb64url(sig_b64)
    except (ValueError, json.JSONDecodeError):
        raise BundleRejected("bundle signature is not a JWS") from None
    if header.get("alg") != ALGORITHM or len(sig) != 64:
        raise BundleRejected(f"bundle signature uses {header.get('alg')!r}, {ALGORITHM} expected")
    public = serialization.load_pem_public_key(public_pem)
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise BundleRejected("the trusted bundle key is not an EC public key")
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        public.verify(der, f"{header_b64}.{body_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BundleRejected("bundle signature does not verify under the trusted key") from None
    if not isinstance(payload, dict):
        raise BundleRejected("bundle signature payload is not an object")
    return payload


def build(source: PolicySource, private_pem: bytes, *, key_id: str = "appliance",
          revision: str | None = None) -> tuple[bytes, str]:
    """The signed bundle of ``source`` as ``.tar.gz`` bytes, and its revision."""
    revision = revision or source.revision
    files: dict[str, bytes] = {
        MANIFEST: json.dumps({"revision": revision, "roots": roots_of(source),
                              "metadata": {"built_by": "appliance policy bundle build"}},
                             indent=2).encode(),
        DATA: json.dumps(source.data, indent=2, ensure_ascii=False, sort_keys=True).encode(),
    }
    for name, text in sorted({**source.modules, **source.tests}.items()):
        files[name] = text.encode("utf-8")
    listed = [{"name": name, "hash": file_hash(name, content), "algorithm": "SHA-256"}
              for name, content in files.items()]
    token = _sign({"files": listed, "keyid": key_id}, private_pem, key_id)
    files[SIGNATURES] = json.dumps({"signatures": [token]}, indent=2).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo("/" + name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0), revision


def _members(archive: bytes) -> dict[str, bytes]:
    try:
        raw = gzip.decompress(archive)
    except (OSError, EOFError):
        raise BundleRejected("bundle is not a gzip archive") from None
    if len(raw) > MAX_BYTES:
        raise BundleRejected(f"bundle is larger than {MAX_BYTES} bytes unpacked")
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.lstrip("/")
                if ".." in name.split("/"):
                    raise BundleRejected(f"bundle file name {member.name!r} leaves the bundle")
                handle = tar.extractfile(member)
                files[name] = handle.read() if handle is not None else b""
    except tarfile.TarError:
        raise BundleRejected("bundle is not a tar archive") from None
    return files


def read(archive: bytes, public_pem: bytes, *, key_id: str | None = None,
         origin: str = "bundle") -> PolicySource:
    """Verify a bundle and turn it into a :class:`PolicySource` (revision: the manifest's).

    Raises :class:`BundleRejected` saying why, before anything of it is compiled.
    """
    files = _members(archive)
    if SIGNATURES not in files:
        raise BundleRejected("bundle is not signed (no .signatures.json)")
    try:
        tokens = json.loads(files.pop(SIGNATURES)).get("signatures") or []
    except (json.JSONDecodeError, AttributeError):
        raise BundleRejected(".signatures.json is not valid") from None
    if len(tokens) != 1:
        raise BundleRejected(f"bundle carries {len(tokens)} signatures, exactly one expected")
    payload = _verify(str(tokens[0]), public_pem)
    if key_id is not None and payload.get("keyid", key_id) != key_id:
        raise BundleRejected(f"bundle is signed as key {payload.get('keyid')!r}, {key_id!r} trusted")
    listed = {str(f.get("name", "")).lstrip("/"): f for f in payload.get("files") or []}
    if set(listed) != set(files):
        extra = sorted(set(files) - set(listed))
        missing = sorted(set(listed) - set(files))
        raise BundleRejected(f"bundle files differ from the signed list (unsigned: {extra}, missing: {missing})")
    for name, content in files.items():
        entry = listed[name]
        if entry.get("algorithm") != "SHA-256" or entry.get("hash") != file_hash(name, content):
            raise BundleRejected(f"bundle file {name} does not match its signed hash")
    if MANIFEST not in files:
        raise BundleRejected("bundle has no .manifest")
    manifest = json.loads(files.pop(MANIFEST))
    revision = str(manifest.get("revision") or "")
    if not revision:
        raise BundleRejected("bundle manifest names no revision")
    data: dict[str, Any] = {}
    modules: dict[str, str] = {}
    tests: dict[str, str] = {}
    for name, content in sorted(files.items()):
        if name.rsplit("/", 1)[-1] == DATA:
            doc = json.loads(content)
            prefix = name.rsplit("/", 1)[0].split("/") if "/" in name else []
            for part in reversed(prefix):
                doc = {part: doc}
            data = _merge(data, doc)
        elif name.endswith(".rego"):
            (tests if name.endswith("_test.rego") else modules)[name] = content.decode("utf-8")
    if not modules:
        raise BundleRejected("bundle holds no Rego modules")
    return PolicySource(Path(origin), modules, tests, data, revision)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def new_signing_key() -> tuple[bytes, bytes]:
    """A fresh ES256 key pair as (private PEM, public PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public
