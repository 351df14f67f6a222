"""Engine settings from HINDSIGHT_* environment variables, each with a safe default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"HINDSIGHT_{name}", default)


def _int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"HINDSIGHT_{name}={raw!r} is not an integer") from None
    if value < 0:
        raise SystemExit(f"HINDSIGHT_{name}={raw!r} must be >= 0")
    return value


def _float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"HINDSIGHT_{name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class EngineSettings:
    grpc_addr: str = "127.0.0.1:50051"
    data_dir: Path = Path("./var")
    store_dir: Path | None = None          # default: <data_dir>/store
    max_concurrent: int = field(default_factory=lambda: os.cpu_count() or 2)
    max_queued: int = 64
    max_running_per_caller: int = 2
    ttl_seconds: float = 12 * 3600.0
    cleanup_interval_seconds: float = 600.0
    shutdown_grace_seconds: float = 5.0
    fsync: bool = True
    gateway_prefix: str = ""               # prepended to stream_url (the gateway's public base)
    # --- identity (see auth.py) ---
    users_file: Path | None = None         # default: <data_dir>/auth/users.sqlite3
    jwt_issuer: str = ""                   # set: JWTs from this issuer are accepted
    jwt_keys: Path | None = None           # its public keys: a JWKS (JSON) or PEM file
    jwt_jwks_url: str = ""                 # or where to fetch its JWKS
    jwt_audience: str = ""                 # required `aud`, if set
    jwt_roles_claim: str = "roles"         # a claim listing "admin" makes an admin
    # --- quotas per user (0: unlimited) ---
    max_queued_per_user: int = 16          # runs waiting to start
    starts_per_minute: int = 60            # StartBacktest calls that create a run
    max_stored_bytes_per_user: int = 20 << 30  # logs, day files and metadata of the user's runs
    max_run_memory_bytes: int = 4 << 30    # estimated arrays of one run, checked before it starts
    list_page_bytes: int = 1 << 20         # a ListBacktests page stops growing here
    switch_interval_ms: float = 1.0        # the GIL's switch interval in the engine (0: Python's 5 ms)
    dask_scheduler: str = ""               # tcp://host:port: sweeps run on that Dask cluster (else embedded)
    max_upload_bytes: int = 1 << 30        # one dataset or option-chain upload, as sent (compressed)
    max_strategies_per_user: int = 1000    # saved strategies (StrategyService) per user
    max_strategy_versions: int = 1000      # versions of one saved strategy

    @property
    def store_root(self) -> Path:
        return self.store_dir or (self.data_dir / "store")

    @property
    def users_db(self) -> Path:
        return self.users_file or (self.data_dir / "auth" / "users.sqlite3")

    @classmethod
    def from_env(cls, **overrides) -> "EngineSettings":
        store = _env("STORE_DIR", "")
        s = cls(
            grpc_addr=_env("GRPC_ADDR", "127.0.0.1:50051"),
            data_dir=Path(_env("DATA_DIR", "./var")),
            store_dir=Path(store) if store else None,
            max_concurrent=max(1, _int("MAX_CONCURRENT", os.cpu_count() or 2)),
            max_queued=_int("MAX_QUEUED", 64),
            max_running_per_caller=max(1, _int("MAX_RUNNING_PER_CALLER", 2)),
            ttl_seconds=_float("TTL_HOURS", 12.0) * 3600.0,
            cleanup_interval_seconds=_float("CLEANUP_INTERVAL_SECONDS", 600.0),
            shutdown_grace_seconds=_float("SHUTDOWN_GRACE_SECONDS", 5.0),
            fsync=_env("FSYNC", "1") not in ("0", "false", "no"),
            users_file=Path(_env("USERS_DB", "")) if _env("USERS_DB", "") else None,
            jwt_issuer=_env("JWT_ISSUER", ""),
            jwt_keys=Path(_env("JWT_KEYS", "")) if _env("JWT_KEYS", "") else None,
            jwt_jwks_url=_env("JWT_JWKS_URL", ""),
            jwt_audience=_env("JWT_AUDIENCE", ""),
            jwt_roles_claim=_env("JWT_ROLES_CLAIM", "roles"),
            max_queued_per_user=_int("MAX_QUEUED_PER_USER", 16),
            starts_per_minute=_int("STARTS_PER_MINUTE", 60),
            max_stored_bytes_per_user=_int("MAX_STORED_MB_PER_USER", 20 << 10) << 20,
            max_run_memory_bytes=_int("MAX_RUN_MEMORY_MB", 4 << 10) << 20,
            list_page_bytes=max(64 << 10, _int("LIST_PAGE_BYTES", 1 << 20)),
            switch_interval_ms=max(0.0, _float("SWITCH_INTERVAL_MS", 1.0)),
            dask_scheduler=_env("DASK_SCHEDULER", "").strip(),
            max_upload_bytes=_int("MAX_UPLOAD_MB", 1 << 10) << 20,
            max_strategies_per_user=_int("MAX_STRATEGIES_PER_USER", 1000),
            max_strategy_versions=_int("MAX_STRATEGY_VERSIONS", 1000),
        )
        return replace(s, **overrides)
