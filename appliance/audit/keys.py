"""Where the audit log's secrets come from: database key, master key, signing key.

Each secret is looked up in the order environment variable, KMS hook, key file; a key
file is created (mode 0600) only when the config allows it. Key material never appears
in an error message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.config.audit import KeySourceConfig
from appliance.errors import ConfigError


class KeyUnavailable(ConfigError):
    """No configured source yields the key."""


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _call_hook(spec: str, purpose: str) -> str | bytes:
    module_name, _, func_name = spec.partition(":")
    if not func_name:
        raise ConfigError(f"kms_hook {spec!r} must look like 'package.module:function'")
    func: Callable[[str], str | bytes] = getattr(importlib.import_module(module_name), func_name)
    return func(purpose)


def load_secret(source: KeySourceConfig, base_dir: Path, purpose: str) -> str:
    """The secret as text (hex for generated keys), from the first source that has it."""
    if source.env and os.environ.get(source.env):
        return os.environ[source.env].strip()
    if source.kms_hook:
        got = _call_hook(source.kms_hook, purpose)
        return got.hex() if isinstance(got, bytes) else got.strip()
    if source.file is not None:
        path = source.file if source.file.is_absolute() else base_dir / source.file
        if path.exists():
            return path.read_text("ascii").strip()
        if source.generate_if_missing:
            value = secrets.token_hex(32)
            try:
                _write_private(path, value.encode("ascii"))
            except FileExistsError:  # another process created it first
                return path.read_text("ascii").strip()
            return value
    raise KeyUnavailable(
        f"no {purpose} key: set ${source.env or '(env)'}, a key file, or a kms_hook"
    )


def key_bytes(text: str, purpose: str) -> bytes:
    """Decode a 32-byte key given as hex or base64."""
    for decode in (bytes.fromhex, base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(raw) == 32:
            return raw
    raise ConfigError(f"the {purpose} key must be 32 bytes, hex or base64 encoded")


def fingerprint(raw: bytes) -> str:
    """A short, non-reversible identifier of a key (safe to store and print)."""
    return hashlib.sha256(b"appliance-key-id:" + raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    key_id: str


def public_raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_raw(public)).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key")
    return key


def load_signing_key(path: Path, public_copy: Path | None, *, create: bool = True) -> SigningKey:
    """Load the Ed25519 checkpoint key, creating it (and a public copy) if allowed."""
    if not path.exists():
        if not create:
            raise KeyUnavailable(f"no audit signing key at {path}")
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            _write_private(path, pem)
        except FileExistsError:
            pass
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    public = loaded.public_key()
    if public_copy is not None and not public_copy.exists():
        public_copy.parent.mkdir(parents=True, exist_ok=True)
        tmp = public_copy.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(public_pem(public))
        os.replace(tmp, public_copy)
    return SigningKey(private=loaded, public=public, key_id=public_key_id(public))
