"""Credentials: argon2 password hashes, signed access tokens, TOTP, API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_dummy_hash: str | None = None
_ALGORITHM = "HS256"
API_KEY_PREFIX = "dsk_"


def configure_password_hashing(time_cost: int, memory_kib: int) -> None:
    """Set the argon2 cost for new hashes in this process (called once, from the runtime)."""
    global _hasher, _dummy_hash
    _hasher, _dummy_hash = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib), None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def dummy_verify(password: str) -> None:
    """Spend the cost of a real check when a username is unknown, so response time does not
    reveal which names exist."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    verify_password(_dummy_hash, password)


def generate_password() -> str:
    return secrets.token_urlsafe(15)


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    jti: str
    expires_at: datetime


def issue_token(secret: str, user_id: int, minutes: int) -> tuple[str, TokenClaims]:
    now = datetime.now(UTC)
    claims = TokenClaims(user_id, uuid.uuid4().hex, now + timedelta(minutes=minutes))
    token = jwt.encode(
        {"sub": str(user_id), "jti": claims.jti, "iat": now, "exp": claims.expires_at, "typ": "access"},
        secret,
        algorithm=_ALGORITHM,
    )
    return token, claims


def decode_token(secret: str, token: str) -> TokenClaims | None:
    """Return the claims of a valid, unexpired token, or None."""
    try:
        data = jwt.decode(token, secret, algorithms=[_ALGORITHM], options={"require": ["sub", "jti", "exp"]})
    except jwt.PyJWTError:
        return None
    if data.get("typ") != "access":
        return None
    return TokenClaims(int(data["sub"]), data["jti"], datetime.fromtimestamp(data["exp"], UTC))


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def totp_step(secret: str, code: str, last_step: int | None) -> int | None:
    """Return the time step ``code`` is valid for (±1 step of clock drift), or None.

    A step at or before ``last_step`` is refused, so a code cannot be replayed."""
    if not code or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(datetime.now(UTC).timestamp()) // totp.interval
    for step in (now_step - 1, now_step, now_step + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_api_key() -> tuple[str, str, str]:
    """Return (full key shown once, lookup prefix, SHA-256 stored at rest).

    API keys carry 256 bits of randomness, so a fast hash is enough (unlike passwords)."""
    prefix = secrets.token_hex(6)
    key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, hash_api_key(key)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_prefix(key: str) -> str | None:
    if not key.startswith(API_KEY_PREFIX):
        return None
    parts = key[len(API_KEY_PREFIX):].split("_", 1)
    return parts[0] if len(parts) == 2 else None
