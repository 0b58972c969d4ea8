"""Local account passwords: argon2id hashes (argon2-cffi's defaults, RFC 9106's second
recommended profile), verified in constant time; the plain password is never stored."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()

#: Shortest password accepted for a local account.
MIN_LENGTH = 12

#: Verified against when the user does not exist, so that an unknown name and a wrong
#: password take the same time (no user enumeration by timing).
_DUMMY = _HASHER.hash("not-a-password-of-anyone")


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise ValueError(f"the password must have at least {MIN_LENGTH} characters")
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: no such user, still costs a check)."""
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
