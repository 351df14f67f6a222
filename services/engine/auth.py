"""Who is calling: bearer tokens (API keys or JWTs) → a `Principal`, or the embedded default's
one local user.

- **API keys** (`hsk_<key id>_<secret>`) are issued by `hindsight users add`, shown once, and
  stored as Argon2id hashes (argon2-cffi) in `users.sqlite3`. A verified key is remembered by
  its SHA-256 so Argon2 runs once per key and process, not per call; its row is read on every
  call, so a revoked key stops working at once (the CLI writes the same database).
- **JWTs** are verified with PyJWT against the configured issuer's public keys (a JWKS or PEM
  file, or a JWKS URL): signature (asymmetric algorithms only), `exp`, `iss`, `aud` when
  configured, and a `sub`, which is the user id. A `roles` claim holding "admin" makes an admin.
- **Local mode**: with no user and no issuer configured, callers on this machine (the gRPC
  peer and, through the gateway, the HTTP client in X-Forwarded-For) are the one user
  `local` without a token; anyone else is refused. The engine refuses to bind a non-loopback
  address in that mode (see server.py).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

USER = "user"
ADMIN = "admin"
ROLES = (USER, ADMIN)
LOCAL_USER = "local"
KEY_PREFIX = "hsk_"
# User ids: what a person would type, and safe as a folder name (see storage.user_dir_name).
USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# JWT algorithms accepted: asymmetric only (an HMAC "public key" would be a shared secret).
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
# Tokens longer than this are refused: with the other metadata a call must stay under gRPC's
# 8 KiB metadata limit (a longer header came back as RESOURCE_EXHAUSTED).
MAX_TOKEN_CHARS = 6144
_CACHE_SIZE = 4096
_NEGATIVE_TTL_S = 60.0
_MODE_TTL_S = 2.0


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    role: str = USER
    method: str = "api_key"  # "api_key", "jwt" or "local"

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


class Unauthenticated(Exception):
    """No valid credentials. `error` is RFC 6750's code for WWW-Authenticate ("" when none was sent)."""

    def __init__(self, message: str, error: str = "invalid_token"):
        super().__init__(message)
        self.message, self.error = message, error

    def www_authenticate(self) -> str:
        value = 'Bearer realm="hindsight"'
        if self.error:
            value += f', error="{self.error}", error_description="{_quoted(self.message)}"'
        return value


def _quoted(text: str) -> str:
    return "".join(c for c in text if c not in '"\\' and 0x20 <= ord(c) < 0x7f)[:200]


def check_user_id(user_id: str) -> str:
    if not USER_ID.fullmatch(user_id or ""):
        raise ValueError(f"invalid user id {user_id!r}: use 1-64 of A-Z a-z 0-9 _ . @ -, starting with a letter or digit")
    return user_id


# --- API keys ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    user_id: str
    role: str
    label: str
    created_at: float
    revoked_at: float | None


class UserStore:
    """Users and their API keys in SQLite (`users.sqlite3`); safe to share between threads."""

    def __init__(self, path: Path) -> None:
        from argon2 import PasswordHasher

        self._hasher = PasswordHasher()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript("""
            CREATE TABLE IF NOT EXISTS users (
                user_id    TEXT PRIMARY KEY,
                role       TEXT NOT NULL CHECK (role IN ('user', 'admin')),
                created_at REAL NOT NULL
            );
            CREATE TABLE IF NOT EXISTS api_keys (
                key_id      TEXT PRIMARY KEY,
                user_id     TEXT NOT NULL REFERENCES users (user_id),
                secret_hash TEXT NOT NULL,
                label       TEXT NOT NULL DEFAULT '',
                created_at  REAL NOT NULL,
                revoked_at  REAL
            );
        """)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, params: Iterable = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def add_user(self, user_id: str, role: str = USER) -> None:
        check_user_id(user_id)
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        try:
            self._rows("INSERT INTO users (user_id, role, created_at) VALUES (?, ?, ?)", (user_id, role, time.time()))
        except sqlite3.IntegrityError:
            raise ValueError(f"user {user_id!r} already exists (add a key with --key-only)") from None

    def issue_key(self, user_id: str, label: str = "") -> str:
        """A new API key for an existing user: the token, which is never stored or shown again."""
        if not self._rows("SELECT 1 FROM users WHERE user_id = ?", (user_id,)):
            raise ValueError(f"no user {user_id!r}")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        self._rows("INSERT INTO api_keys (key_id, user_id, secret_hash, label, created_at) VALUES (?, ?, ?, ?, ?)",
                   (key_id, user_id, self._hasher.hash(secret), label[:200], time.time()))
        return f"{KEY_PREFIX}{key_id}_{secret}"

    def keys(self) -> list[ApiKey]:
        rows = self._rows("SELECT k.key_id, k.user_id, u.role, k.label, k.created_at, k.revoked_at "
                          "FROM api_keys k JOIN users u USING (user_id) ORDER BY k.created_at")
        return [ApiKey(*r) for r in rows]

    def users(self) -> list[tuple[str, str, float]]:
        return self._rows("SELECT user_id, role, created_at FROM users ORDER BY user_id")

    def revoke(self, ident: str) -> int:
        """Revoke one key (by key id) or every key of a user (by user id); how many were revoked."""
        now = time.time()
        with self._lock:
            n = self._db.execute("UPDATE api_keys SET revoked_at = ? WHERE revoked_at IS NULL AND "
                                 "(key_id = ? OR user_id = ?)", (now, ident, ident)).rowcount
        return n

    def has_users(self) -> bool:
        return bool(self._rows("SELECT 1 FROM users LIMIT 1"))

    def key(self, key_id: str) -> ApiKey | None:
        rows = self._rows("SELECT k.key_id, k.user_id, u.role, k.label, k.created_at, k.revoked_at "
                          "FROM api_keys k JOIN users u USING (user_id) WHERE k.key_id = ?", (key_id,))
        return ApiKey(*rows[0]) if rows else None

    def secret_hash(self, key_id: str) -> str | None:
        rows = self._rows("SELECT secret_hash FROM api_keys WHERE key_id = ?", (key_id,))
        return rows[0][0] if rows else None

    def verify_secret(self, key_id: str, secret: str) -> bool:
        """Argon2 verification (tens of milliseconds, by design): call it off the event loop."""
        from argon2.exceptions import InvalidHashError, VerificationError

        stored = self.secret_hash(key_id)
        if stored is None:
            return False
        try:
            return self._hasher.verify(stored, secret)
        except (VerificationError, InvalidHashError):
            return False


# --- JWTs -------------------------------------------------------------------------------------

class JwtVerifier:
    """Verifies JWTs from one issuer with its public keys (a JWKS or PEM file, or a JWKS URL)."""

    def __init__(self, issuer: str, *, keys_file: Path | None = None, jwks_url: str = "",
                 audience: str = "", roles_claim: str = "roles", leeway_s: float = 30.0) -> None:
        import jwt

        if not issuer:
            raise ValueError("a JWT issuer is required (HINDSIGHT_JWT_ISSUER)")
        if not keys_file and not jwks_url:
            raise ValueError("JWT keys are required: HINDSIGHT_JWT_KEYS (a JWKS or PEM file) or HINDSIGHT_JWT_JWKS_URL")
        self.issuer, self.audience, self.roles_claim, self.leeway = issuer, audience, roles_claim, leeway_s
        self._client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300) if jwks_url else None
        self._keys: dict[str | None, object] = {}
        if keys_file:
            text = Path(keys_file).read_text()
            if text.lstrip().startswith("{"):
                for k in jwt.PyJWKSet.from_dict(json.loads(text)).keys:
                    self._keys[k.key_id] = k.key
            else:
                from cryptography.hazmat.primitives.serialization import load_pem_public_key

                blocks = re.findall(r"-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----", text, re.S)
                if not blocks:
                    raise ValueError(f"{keys_file}: no PEM public key and not a JWKS")
                for n, block in enumerate(blocks):
                    self._keys[None if n == 0 else f"pem-{n}"] = load_pem_public_key(block.encode())

    def verify(self, token: str) -> Principal:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in JWT_ALGORITHMS:
                raise Unauthenticated(f"JWT algorithm {header.get('alg')!r} is not accepted")
            key = self._key_for(header.get("kid"), token)
            algorithms = _algorithms_for(key)
            if header.get("alg") not in algorithms:
                raise Unauthenticated(f"JWT algorithm {header.get('alg')!r} does not match the issuer's key")
            claims = jwt.decode(token, key, algorithms=algorithms, issuer=self.issuer,
                                audience=self.audience or None, leeway=self.leeway,
                                options={"require": ["exp", "iss", "sub"], "verify_aud": bool(self.audience)})
        except Unauthenticated:
            raise
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the JWT has expired") from None
        except (jwt.InvalidTokenError, TypeError, ValueError) as exc:
            raise Unauthenticated(f"invalid JWT: {str(exc)[:200]}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > 255:
            raise Unauthenticated("invalid JWT: 'sub' must be a non-empty string")
        roles = claims.get(self.roles_claim) or []
        if isinstance(roles, str):
            roles = roles.split()
        role = ADMIN if isinstance(roles, list) and ADMIN in roles else USER
        return Principal(sub, role, "jwt")

    def _key_for(self, kid: str | None, token: str) -> object:
        if self._client is not None:
            import jwt

            try:
                return self._client.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientError as exc:
                raise Unauthenticated(f"no key of the issuer verifies this JWT ({exc})") from None
        if kid in self._keys:
            return self._keys[kid]
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        raise Unauthenticated(f"no key of the issuer has kid {str(kid)[:64]!r}")


def _algorithms_for(key: object) -> list[str]:
    """The algorithms a key can verify (a token may not choose one its key was not made for)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return ["ES256", "ES384", "ES512"]
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return ["EdDSA"]
    return []


# --- the authenticator -------------------------------------------------------------------------

def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def peer_host(peer: str) -> str:
    """The address in a gRPC peer string: "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:…"."""
    kind, _, rest = (peer or "").partition(":")
    if kind == "unix":
        return "localhost"
    if kind == "ipv6":
        return rest.rsplit("]", 1)[0].lstrip("[") if rest.startswith("[") else rest.rsplit(":", 1)[0]
    return rest.rsplit(":", 1)[0]


class Authenticator:
    """Turns a call's metadata into a Principal, or raises Unauthenticated."""

    def __init__(self, users: UserStore | None = None, jwt_verifier: JwtVerifier | None = None) -> None:
        self.users, self.jwt = users, jwt_verifier
        self._verified: OrderedDict[str, bytes] = OrderedDict()   # key id → SHA-256 of a good token
        self._refused: OrderedDict[bytes, float] = OrderedDict()  # SHA-256 of a bad token → until
        self._lock = threading.Lock()
        self._mode_checked = 0.0
        self._configured = False

    @property
    def configured(self) -> bool:
        """Whether tokens are required: a user exists or an issuer is configured."""
        if self.jwt is not None:
            return True
        now = time.monotonic()
        if now - self._mode_checked > _MODE_TTL_S:  # users may be added by the CLI meanwhile
            self._configured = self.users is not None and self.users.has_users()
            self._mode_checked = now
        return self._configured

    def authenticate(self, metadata: Mapping[str, str], peer: str) -> Principal:
        """Blocking (Argon2 on a key's first use): call it off the event loop when it may verify."""
        header = metadata.get("authorization", "")
        if not header:
            if not self.configured:
                return self._local(metadata, peer)
            raise Unauthenticated("missing credentials: send 'authorization: Bearer <token>' (an API key from "
                                  "'hindsight users add', or a JWT from the configured issuer)", error="")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the authorization header must be 'Bearer <token>'", error="invalid_request")
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated(f"the token is longer than {MAX_TOKEN_CHARS} characters")
        if token.startswith(KEY_PREFIX):
            return self._api_key(token)
        if token.count(".") == 2 and self.jwt is not None:
            return self.jwt.verify(token)
        if not self.configured:
            raise Unauthenticated("this engine has no users or issuer configured: it accepts no tokens "
                                  "(leave the authorization header out on this machine)")
        raise Unauthenticated("unrecognised token: expected an API key (hsk_…)"
                              + (" or a JWT" if self.jwt is not None else ""))

    def needs_thread(self, metadata: Mapping[str, str]) -> bool:
        """Whether authenticate() may run Argon2 (a key not verified yet by this process)."""
        header = metadata.get("authorization", "")
        token = header.partition(" ")[2].strip()
        if not token.startswith(KEY_PREFIX):
            return bool(self.jwt and self.jwt._client)  # fetching a JWKS is network I/O
        key_id = token[len(KEY_PREFIX):].partition("_")[0]
        with self._lock:
            return key_id not in self._verified

    def _local(self, metadata: Mapping[str, str], peer: str) -> Principal:
        hops = [h.strip() for h in metadata.get("x-forwarded-for", "").split(",") if h.strip()]
        client = hops[-1] if hops else None  # the gateway appends the address it saw
        if is_loopback(peer_host(peer)) and (client is None or is_loopback(client)):
            return Principal(LOCAL_USER, ADMIN, "local")
        raise Unauthenticated("this engine has no users configured and serves only clients on its own machine; "
                              "add a user with 'hindsight users add' to serve others", error="")

    def _api_key(self, token: str) -> Principal:
        if self.users is None:
            raise Unauthenticated("API keys are not enabled on this engine")
        key_id, _, secret = token[len(KEY_PREFIX):].partition("_")
        digest = hashlib.sha256(token.encode()).digest()
        key = self.users.key(key_id) if re.fullmatch(r"[0-9a-f]{16}", key_id) else None
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("unknown or revoked API key")
        with self._lock:
            known = self._verified.get(key_id)
            refused_until = self._refused.get(digest, 0.0)
        if known is not None and hmac.compare_digest(known, digest):
            return Principal(key.user_id, key.role, "api_key")
        if refused_until > time.monotonic():
            raise Unauthenticated("unknown or revoked API key")
        if not self.users.verify_secret(key_id, secret):
            with self._lock:
                self._refused[digest] = time.monotonic() + _NEGATIVE_TTL_S
                while len(self._refused) > _CACHE_SIZE:
                    self._refused.popitem(last=False)
            raise Unauthenticated("unknown or revoked API key")
        with self._lock:
            self._verified[key_id] = digest
            while len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
        return Principal(key.user_id, key.role, "api_key")


def from_settings(settings) -> Authenticator:
    """The authenticator an engine's settings describe (users database, optional issuer)."""
    users = UserStore(settings.users_db)
    verifier = None
    if settings.jwt_issuer:
        verifier = JwtVerifier(settings.jwt_issuer, keys_file=settings.jwt_keys, jwks_url=settings.jwt_jwks_url,
                               audience=settings.jwt_audience, roles_claim=settings.jwt_roles_claim)
    return Authenticator(users, verifier)
