"""Gateway settings: `HINDSIGHT_*` environment variables, each with a safe default.

`GatewaySettings.from_env()` reads them; tests build `GatewaySettings(...)` directly.
A bad value fails at start-up with a message that names the variable and what it expects.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]

# Where `make setup` installs the Swagger UI renderer (npm `swagger-ui-dist`).
_DOCS_CANDIDATES = (_REPO / "node_modules" / "swagger-ui-dist",)


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    # host:port the HTTP server listens on.
    http_addr: str = "127.0.0.1:8080"
    # host:port (or any gRPC target) of the engine.
    engine_addr: str = "127.0.0.1:50051"
    # Origins allowed by CORS; empty: CORS headers are never sent.
    cors_origins: tuple[str, ...] = ()
    # Lifetime of the dashboard's session cookie (services/gateway/session.py), seconds.
    session_max_age_s: int = 12 * 3600
    # Largest accepted request body, bytes (uploads have their own limit, below).
    max_body_bytes: int = 1 << 20
    # Largest upload, bytes: the request body of a client-streaming RPC whose body is a
    # google.api.HttpBody field (POST /api/v1/datasets/{symbol}:upload), streamed to the engine
    # and never held whole. A Content-Length over it is answered 413 before anything is read; a
    # chunked body that grows past it is answered 413 and its call cancelled. Env:
    # HINDSIGHT_GATEWAY_MAX_UPLOAD_MB, in MiB.
    max_upload_bytes: int = 1024 << 20
    # An upload whose client sends nothing for this long is answered 408 and its call cancelled
    # (the engine discards what it had), seconds.
    upload_idle_timeout_s: float = 60.0
    # Deadline of unary calls without a Grpc-Timeout header, seconds (streams and uploads get none).
    default_timeout_s: float = 30.0
    # A comment line is sent on an idle event stream this often, seconds.
    heartbeat_s: float = 15.0
    # The reconnection delay an EventSource is told to use (the `retry:` field), ms.
    sse_retry_ms: int = 2000
    # How long a stream may stay silent before its 200 headers are sent anyway, seconds.
    # Until then an error keeps its real HTTP status and an empty stream is answered 204.
    stream_open_wait_s: float = 5.0
    # Deadline of the engine health check behind /readyz, seconds.
    ready_timeout_s: float = 2.0
    # Retry-After (seconds) sent with every 503.
    retry_after_s: int = 1
    # Largest gRPC message the gateway accepts from the engine, bytes.
    max_message_bytes: int = 64 << 20
    # JSON responses smaller than this are not gzipped, bytes.
    gzip_min_bytes: int = 1024
    # Folder of the Swagger UI files served under /docs (None: /docs explains how to install).
    docs_dir: Path | None = dataclasses.field(default_factory=lambda: _find_docs_dir(None))
    # Seconds in-flight requests get to finish on shutdown before they are cancelled.
    shutdown_grace_s: float = 5.0
    log_level: str = "info"
    # ---- connections (services/gateway/protocol.py); 0 turns a limit off ----
    # Open connections in all; one more is answered 503 (UNAVAILABLE, Retry-After) and closed.
    max_connections: int = 2048
    # Open connections from one peer IP address; one more is answered 429 (RESOURCE_EXHAUSTED,
    # Retry-After) and closed. Behind a reverse proxy every connection comes from the proxy's
    # address: raise this to max_connections (or 0) there. `make bench` (section load) holds 500
    # idle connections from 127.0.0.1 and raises it to 1024 for that.
    max_connections_per_client: int = 512
    # A request line and headers not complete this many seconds after the connection opened (or,
    # on a kept-alive connection, after the request's first byte) are answered 408 and the
    # connection is closed. An idle kept-alive connection is closed after uvicorn's
    # timeout_keep_alive (5 s) without a response.
    header_timeout_s: float = 10.0
    # ---- slow readers of responses (event streams, downloads) ----
    # A connection whose client has taken none of a response for this long (the socket's buffers
    # full, the next write still waiting) is reset, and so is an event stream's (or download's)
    # whose client has not taken a piece of it (64 KiB) in this long: it is too far behind. An
    # event-stream client resumes with Last-Event-ID, losing nothing.
    slow_reader_timeout_s: float = 30.0
    # Bytes of framed events (SSE/NDJSON/download chunks) a stream holds for a client that is
    # behind; past this the gateway stops reading from the engine (gRPC flow control holds the
    # rest back in the engine) until the client takes some.
    stream_buffer_bytes: int = 256 * 1024
    # Per-stream HTTP/2 receive window of the channel to the engine, bytes: what gRPC buffers
    # for a stream whose reader is behind (and the most in flight per stream: 256 KiB is
    # ~25 MB/s at 10 ms to the engine). 0: gRPC's default, which grows the window with its
    # bandwidth-delay probe to megabytes per stream (~7.5 MB per stalled SSE client, measured).
    grpc_stream_window_bytes: int = 256 * 1024
    # Events per batch the gateway asks the engine for when it reads a stream through its
    # batched sibling (StreamBacktestBatchesRequest.max_events); 0: the engine's default (1,000,
    # up to 1 MiB), which a stalled client would hold a whole batch of.
    stream_batch_events: int = 256

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        env = os.environ if env is None else env
        defaults = cls(docs_dir=None)
        return cls(
            http_addr=env.get("HINDSIGHT_HTTP_ADDR", defaults.http_addr),
            engine_addr=env.get("HINDSIGHT_ENGINE_ADDR", defaults.engine_addr),
            cors_origins=tuple(o.strip() for o in env.get("HINDSIGHT_CORS_ORIGINS", "").split(",") if o.strip()),
            session_max_age_s=_int(env, "HINDSIGHT_SESSION_MAX_AGE_S", defaults.session_max_age_s),
            max_body_bytes=_int(env, "HINDSIGHT_MAX_BODY_BYTES", defaults.max_body_bytes),
            max_upload_bytes=_mib(env, "HINDSIGHT_GATEWAY_MAX_UPLOAD_MB", defaults.max_upload_bytes),
            upload_idle_timeout_s=_float(env, "HINDSIGHT_GATEWAY_UPLOAD_IDLE_TIMEOUT_S",
                                         defaults.upload_idle_timeout_s),
            default_timeout_s=_float(env, "HINDSIGHT_DEFAULT_TIMEOUT_S", defaults.default_timeout_s),
            heartbeat_s=_float(env, "HINDSIGHT_SSE_HEARTBEAT_S", defaults.heartbeat_s),
            sse_retry_ms=_int(env, "HINDSIGHT_SSE_RETRY_MS", defaults.sse_retry_ms),
            stream_open_wait_s=_float(env, "HINDSIGHT_STREAM_OPEN_WAIT_S", defaults.stream_open_wait_s),
            ready_timeout_s=_float(env, "HINDSIGHT_READY_TIMEOUT_S", defaults.ready_timeout_s),
            max_message_bytes=_int(env, "HINDSIGHT_MAX_MESSAGE_BYTES", defaults.max_message_bytes),
            docs_dir=_find_docs_dir(env.get("HINDSIGHT_DOCS_DIR")),
            shutdown_grace_s=_float(env, "HINDSIGHT_SHUTDOWN_GRACE_S", defaults.shutdown_grace_s),
            log_level=env.get("HINDSIGHT_LOG_LEVEL", defaults.log_level).lower(),
            max_connections=_int(env, "HINDSIGHT_MAX_CONNECTIONS", defaults.max_connections),
            max_connections_per_client=_int(env, "HINDSIGHT_MAX_CONNECTIONS_PER_CLIENT",
                                            defaults.max_connections_per_client),
            header_timeout_s=_float(env, "HINDSIGHT_HEADER_TIMEOUT_S", defaults.header_timeout_s),
            slow_reader_timeout_s=_float(env, "HINDSIGHT_SLOW_READER_TIMEOUT_S", defaults.slow_reader_timeout_s),
            stream_buffer_bytes=_int(env, "HINDSIGHT_STREAM_BUFFER_BYTES", defaults.stream_buffer_bytes),
            grpc_stream_window_bytes=_int(env, "HINDSIGHT_GRPC_STREAM_WINDOW_BYTES",
                                          defaults.grpc_stream_window_bytes),
            stream_batch_events=_int(env, "HINDSIGHT_STREAM_BATCH_EVENTS", defaults.stream_batch_events),
        )

    def __post_init__(self) -> None:
        split_host_port(self.http_addr)  # fails early on a malformed address
        if self.session_max_age_s <= 0:
            raise ValueError("HINDSIGHT_SESSION_MAX_AGE_S must be a positive number of seconds, "
                             f"got {self.session_max_age_s}")
        for name in ("max_body_bytes", "max_upload_bytes", "max_message_bytes", "sse_retry_ms",
                     "stream_buffer_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("default_timeout_s", "heartbeat_s", "ready_timeout_s", "header_timeout_s",
                     "slow_reader_timeout_s", "upload_idle_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {getattr(self, name)}")
        if self.stream_open_wait_s < 0 or self.shutdown_grace_s < 0:
            raise ValueError("stream_open_wait_s and shutdown_grace_s must not be negative")
        for name in ("max_connections", "max_connections_per_client", "grpc_stream_window_bytes",
                     "stream_batch_events"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative (0 turns it off), got {getattr(self, name)}")


def split_host_port(addr: str) -> tuple[str, int]:
    """`127.0.0.1:8080`, `[::1]:8080` or `:8080` (all interfaces) → (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"HINDSIGHT_HTTP_ADDR must be HOST:PORT, e.g. 127.0.0.1:8080; got {addr!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _find_docs_dir(explicit: str | None) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not (path / "swagger-ui-bundle.js").is_file():
            raise ValueError(f"HINDSIGHT_DOCS_DIR={explicit!r} has no swagger-ui-bundle.js "
                             "(point it at an installed npm swagger-ui-dist package)")
        return path
    for path in _DOCS_CANDIDATES:
        if (path / "swagger-ui-bundle.js").is_file():
            return path
    return None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _mib(env: Mapping[str, str], name: str, default: int) -> int:
    """A size given in MiB (a number: 0.5 is 512 KiB), as bytes."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        mib = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of MiB, got {raw!r}") from None
    if not mib > 0 or mib == float("inf"):
        raise ValueError(f"{name} must be a positive number of MiB, got {raw!r}")
    return max(1, round(mib * (1 << 20)))


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
