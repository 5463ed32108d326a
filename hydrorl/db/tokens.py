"""Bearer tokens of the HTTP API: created, listed, revoked and checked (sessions framed by
the caller).

A token's secret is ``secrets.token_urlsafe(32)``, shown once at creation; the table keeps
only its SHA-256, so a copy of the database lets no one in.
"""

from __future__ import annotations

import hashlib
import secrets

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from hydrorl.db import models
from hydrorl.errors import AlreadyExistsError, NotFoundError, ValidationError

#: The prefix of every secret: a secret scanner (or a person) recognises a leaked one.
SECRET_PREFIX = "hrl_"


def hash_secret(secret: str) -> str:
    """The hex SHA-256 a secret is stored as."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, name: str) -> str:
    """Store a new token named ``name``; return its secret (the only time it is seen)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationError(f"a token name is 1 to 200 characters, got {name!r}")
    taken = session.scalar(sa.select(models.ApiToken.id).where(models.ApiToken.name == name))
    if taken is not None:
        raise AlreadyExistsError(f"a token named {name!r} exists: choose another name")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    session.add(models.ApiToken(name=name, token_hash=hash_secret(secret)))
    session.flush()
    return secret


def list_tokens(session: Session) -> pd.DataFrame:
    """Every token: id, name, created, revoked (no secret, no hash)."""
    t = models.ApiToken
    stmt = sa.select(t.id, t.name, t.created_at, t.revoked_at).order_by(t.id)
    return pd.DataFrame(session.execute(stmt).all(), columns=list(stmt.selected_columns.keys()))


def revoke_token(session: Session, name: str) -> None:
    """Revoke the token named ``name``: the server refuses it from the next request on."""
    row = session.scalar(sa.select(models.ApiToken).where(models.ApiToken.name == name))
    if row is None:
        raise NotFoundError(f"no token named {name!r} (hydrorl token list shows them)")
    if row.revoked_at is None:
        row.revoked_at = models.utcnow()
    session.flush()


def active_hashes(session: Session) -> set[str]:
    """The hashes of the tokens not revoked."""
    t = models.ApiToken
    return set(session.scalars(sa.select(t.token_hash).where(t.revoked_at.is_(None))))


def check_secret(session: Session, secret: str) -> bool:
    """Whether ``secret`` is an unrevoked token (compared by hash, in constant time)."""
    digest = hash_secret(secret)
    return any(secrets.compare_digest(digest, h) for h in active_hashes(session))


def has_tokens(session: Session) -> bool:
    """Whether any token is not revoked."""
    return bool(active_hashes(session))
