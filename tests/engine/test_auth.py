"""Who may call and what each caller sees: API keys, JWTs, the local mode, isolation between
users over every RPC, quotas and malformed messages, against a real engine on port 0."""

from __future__ import annotations

import asyncio
import time

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from hindsight.v1 import backtest_service_pb2 as pb

from services.engine.auth import UserStore
from tests.engine.conftest import start_request

SHORT = ("2024-01-01", "2024-01-03")


async def failure(coro) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro
    return info.value


def details_of(err: grpc.aio.AioRpcError) -> list:
    st = rpc_status.from_call(err)
    out = []
    for d in st.details if st else ():
        for cls in (error_details_pb2.ResourceInfo, error_details_pb2.BadRequest, error_details_pb2.ErrorInfo,
                    error_details_pb2.RetryInfo):
            if d.Is(cls.DESCRIPTOR):
                msg = cls()
                d.Unpack(msg)
                out.append(msg)
    return out


async def run_to_end(stub, md, **kw) -> str:
    started = await stub.StartBacktest(start_request(days=SHORT, **kw), metadata=md)
    events = [e async for e in stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=started.backtest_id),
                                                   metadata=md)]
    assert events[-1].WhichOneof("event") == "backtest_completed"
    return started.backtest_id


# --- the local mode ---------------------------------------------------------------------------

async def test_local_mode_is_one_user_on_this_machine_without_a_token(stub):
    me = await stub.GetCaller(pb.GetCallerRequest())
    assert (me.user_id, me.role, me.auth_method) == ("local", "admin", "local")
    assert {q.name for q in me.quotas} >= {"running_backtests", "queued_backtests", "starts_per_minute", "stored_bytes"}
    err = await failure(stub.GetCaller(pb.GetCallerRequest(), metadata=(("authorization", "Bearer hsk_x_y"),)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    # A client the gateway saw on another machine is not local.
    err = await failure(stub.GetCaller(pb.GetCallerRequest(), metadata=(("x-forwarded-for", "127.0.0.1, 203.0.113.9"),)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "only clients on its own machine" in err.details()


async def test_local_mode_refuses_a_non_loopback_address(settings):
    from services.engine.server import create_server

    with pytest.raises(SystemExit) as info:
        await create_server(settings, "0.0.0.0:0")
    assert "refusing to serve 0.0.0.0" in str(info.value) and "hindsight users add" in str(info.value)


async def test_with_users_a_non_loopback_address_is_served(tokens, settings):
    from services.engine.server import create_server

    eng = await create_server(settings, "0.0.0.0:0")
    try:
        await eng.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as ch:
            from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc

            me = await pb_grpc.BacktestServiceStub(ch).GetCaller(pb.GetCallerRequest(), metadata=tokens["bob"])
            assert me.user_id == "bob"
    finally:
        await eng.stop(0.1)


# --- API keys ---------------------------------------------------------------------------------

async def test_tokens_are_required_once_users_exist(tokens, stub, settings):
    for md, error in ((None, ""), ((("authorization", "Bearer hsk_0123456789abcdef_nope"),), "invalid_token"),
                      ((("authorization", "Basic YWxpY2U6eA=="),), "invalid_request"),
                      ((("authorization", "Bearer not-a-token"),), "invalid_token")):
        call = stub.ListBacktests(pb.ListBacktestsRequest(), metadata=md)
        err = await failure(call)
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, md
        challenge = dict(err.trailing_metadata() or ())["www-authenticate"]
        assert challenge.startswith('Bearer realm="hindsight"')
        assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)
    me = await stub.GetCaller(pb.GetCallerRequest(), metadata=tokens["alice"])
    assert (me.user_id, me.role, me.auth_method) == ("alice", "user", "api_key")
    # The same key id with another secret is refused (and so is a revoked key, at once).
    good = tokens["bob"][0][1]
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    err = await failure(stub.GetCaller(pb.GetCallerRequest(), metadata=(("authorization", forged),)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    users = UserStore(settings.users_db)
    key_id = good.split("_")[1]
    assert users.revoke(key_id) == 1
    assert all(k.revoked_at for k in users.keys() if k.key_id == key_id)
    users.close()
    err = await failure(stub.GetCaller(pb.GetCallerRequest(), metadata=tokens["bob"]))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "revoked" in err.details()


def test_keys_are_stored_hashed(settings):
    users = UserStore(settings.users_db)
    users.add_user("dora")
    token = users.issue_key("dora", label="laptop")
    users.close()
    raw = settings.users_db.read_bytes()
    secret = token.split("_", 2)[2]
    assert secret.encode() not in raw and b"$argon2id$" in raw
    with pytest.raises(ValueError):
        UserStore(settings.users_db).add_user("../etc")


# --- isolation --------------------------------------------------------------------------------

async def test_another_users_backtest_answers_exactly_like_a_missing_one(tokens, stub):
    alice, bob, root = tokens["alice"], tokens["bob"], tokens["root"]
    bid = await run_to_end(stub, alice)
    day = (await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid), metadata=alice)).daily_summaries[0].date
    missing = "bt_20240101_000000_" + "0" * 8
    missing = missing[: len(bid)].ljust(len(bid), "0")

    async def outcome(ident: str, call):
        err = await failure(call(ident))
        text = err.details().replace(ident, "<id>")
        return err.code(), text, [str(d).replace(ident, "<id>") for d in details_of(err)]

    calls = {
        "GetBacktest": lambda i: stub.GetBacktest(pb.GetBacktestRequest(backtest_id=i), metadata=bob),
        "CancelBacktest": lambda i: stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=i), metadata=bob),
        "DeleteBacktest": lambda i: stub.DeleteBacktest(pb.DeleteBacktestRequest(backtest_id=i), metadata=bob),
        "GetDay": lambda i: stub.GetDay(pb.GetDayRequest(backtest_id=i, date=day), metadata=bob),
        "StreamBacktest": lambda i: collect_with(stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=i), metadata=bob)),
        "StreamBacktestBatches": lambda i: collect_with(stub.StreamBacktestBatches(
            pb.StreamBacktestBatchesRequest(backtest_id=i), metadata=bob)),
        "DownloadDay": lambda i: collect_with(stub.DownloadDay(pb.DownloadDayRequest(backtest_id=i, date=day), metadata=bob)),
        "DownloadBacktest": lambda i: collect_with(stub.DownloadBacktest(pb.DownloadBacktestRequest(backtest_id=i),
                                                                         metadata=bob)),
    }
    for name, call in calls.items():
        theirs = await outcome(bid, call)
        absent = await outcome(missing, call)
        assert theirs == absent, name
        assert theirs[0] == grpc.StatusCode.NOT_FOUND, name
    # Lists never leak; the run is untouched; its owner and an admin still see it.
    assert not (await stub.ListBacktests(pb.ListBacktestsRequest(), metadata=bob)).backtests
    mine = await stub.ListBacktests(pb.ListBacktestsRequest(), metadata=alice)
    assert [b.backtest_id for b in mine.backtests] == [bid] and mine.backtests[0].owner == "alice"
    err = await failure(stub.ListBacktests(pb.ListBacktestsRequest(all_users=True), metadata=bob))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    everyone = await stub.ListBacktests(pb.ListBacktestsRequest(all_users=True), metadata=root)
    assert bid in {b.backtest_id for b in everyone.backtests}
    assert not (await stub.ListBacktests(pb.ListBacktestsRequest(), metadata=root)).backtests  # root's own
    got = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=bid), metadata=root)
    assert got.status == pb.BACKTEST_STATUS_COMPLETED and got.owner == "alice"
    events = await collect_with(stub.StreamBacktest(pb.StreamBacktestRequest(backtest_id=bid), metadata=alice))
    assert events[-1].WhichOneof("event") == "backtest_completed"


async def collect_with(call) -> list:
    return [m async for m in call]


async def test_idempotency_keys_are_per_user(tokens, stub):
    a1 = await stub.StartBacktest(start_request(days=SHORT, request_id="r1"), metadata=tokens["alice"])
    a2 = await stub.StartBacktest(start_request(days=SHORT, request_id="r1"), metadata=tokens["alice"])
    b1 = await stub.StartBacktest(start_request(days=SHORT, request_id="r1"), metadata=tokens["bob"])
    assert a1.backtest_id == a2.backtest_id != b1.backtest_id
    got = await stub.GetBacktest(pb.GetBacktestRequest(backtest_id=b1.backtest_id), metadata=tokens["bob"])
    assert got.owner == "bob"


# --- JWTs -------------------------------------------------------------------------------------

@pytest.fixture
def issuer(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / "issuer.pem"
    path.write_bytes(pem)
    return key, path


@pytest.fixture
async def jwt_stub(settings, issuer):
    from dataclasses import replace

    from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
    from services.engine.server import create_server

    eng = await create_server(replace(settings, jwt_issuer="https://id.example", jwt_keys=issuer[1],
                                      jwt_audience="hindsight"), "127.0.0.1:0")
    await eng.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as ch:
        yield pb_grpc.BacktestServiceStub(ch)
    await eng.stop(0.1)


def signed(key, **claims) -> tuple[tuple[str, str]]:
    now = int(time.time())
    body = {"iss": "https://id.example", "aud": "hindsight", "sub": "carol", "iat": now, "exp": now + 300, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return (("authorization", "Bearer " + jwt.encode(body, key, algorithm="RS256")),)


async def test_jwts_from_the_configured_issuer(jwt_stub, issuer):
    key = issuer[0]
    me = await jwt_stub.GetCaller(pb.GetCallerRequest(), metadata=signed(key))
    assert (me.user_id, me.role, me.auth_method) == ("carol", "user", "jwt")
    admin = await jwt_stub.GetCaller(pb.GetCallerRequest(), metadata=signed(key, sub="erin", roles=["admin"]))
    assert admin.role == "admin"
    other = ec.generate_private_key(ec.SECP256R1())
    bad = {
        "expired": signed(key, exp=int(time.time()) - 3600),
        "other issuer": signed(key, iss="https://evil.example"),
        "other audience": signed(key, aud="someone-else"),
        "no sub": signed(key, sub=None),
        "other key": (("authorization", "Bearer " + jwt.encode(
            {"iss": "https://id.example", "aud": "hindsight", "sub": "carol", "exp": int(time.time()) + 60},
            other, algorithm="ES256")),),
        "hmac": (("authorization", "Bearer " + jwt.encode(
            {"iss": "https://id.example", "aud": "hindsight", "sub": "carol", "exp": int(time.time()) + 60},
            "secret-secret-secret-secret-secret!", algorithm="HS256")),),
        "none": (("authorization", "Bearer " + jwt.encode(
            {"iss": "https://id.example", "sub": "carol", "exp": int(time.time()) + 60}, None, algorithm="none")),),
    }
    for name, md in bad.items():
        err = await failure(jwt_stub.GetCaller(pb.GetCallerRequest(), metadata=md))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, name
    # No token at all: an issuer is configured, so one is required.
    err = await failure(jwt_stub.GetCaller(pb.GetCallerRequest()))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    # A JWT user's runs are theirs.
    started = await jwt_stub.StartBacktest(start_request(days=SHORT), metadata=signed(key))
    err = await failure(jwt_stub.GetBacktest(pb.GetBacktestRequest(backtest_id=started.backtest_id),
                                             metadata=signed(key, sub="dave")))
    assert err.code() == grpc.StatusCode.NOT_FOUND


# --- quotas -----------------------------------------------------------------------------------

async def engine_with(settings, **changes):
    from dataclasses import replace

    from services.engine.server import create_server

    eng = await create_server(replace(settings, **changes), "127.0.0.1:0")
    await eng.start()
    return eng


async def test_start_rate_and_queued_runs_per_user(tokens, settings):
    from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc

    eng = await engine_with(settings, starts_per_minute=2, max_queued_per_user=1, max_running_per_caller=1)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as ch:
            stub = pb_grpc.BacktestServiceStub(ch)
            alice = tokens["alice"]
            long = dict(days=("2016-01-01", "2025-12-31"), tick_interval=1)
            first = await stub.StartBacktest(start_request(**long), metadata=alice)   # runs
            second = await stub.StartBacktest(start_request(**long), metadata=alice)  # waits
            err = await failure(stub.StartBacktest(start_request(**long), metadata=alice))
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            info = [d for d in details_of(err) if isinstance(d, error_details_pb2.ErrorInfo)][0]
            assert info.reason == "QUEUED_BACKTESTS" and "waiting to start" in err.details()
            await stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=second.backtest_id), metadata=alice)
            err = await failure(stub.StartBacktest(start_request(**long), metadata=alice))
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "starts in a minute" in err.details()
            retry = [d for d in details_of(err) if isinstance(d, error_details_pb2.RetryInfo)][0]
            assert 1 <= retry.retry_delay.seconds <= 30
            # Bob has his own budget; an idempotent repeat is not a new start.
            bob = await stub.StartBacktest(start_request(days=SHORT, request_id="k"), metadata=tokens["bob"])
            again = await stub.StartBacktest(start_request(days=SHORT, request_id="k"), metadata=tokens["bob"])
            again2 = await stub.StartBacktest(start_request(days=SHORT, request_id="k"), metadata=tokens["bob"])
            assert bob.backtest_id == again.backtest_id == again2.backtest_id
            me = await stub.GetCaller(pb.GetCallerRequest(), metadata=alice)
            quotas = {q.name: (q.limit, q.used) for q in me.quotas}
            assert quotas["starts_per_minute"] == (2, 2) and quotas["running_backtests"][0] == 1
            await stub.CancelBacktest(pb.CancelBacktestRequest(backtest_id=first.backtest_id), metadata=alice)
    finally:
        await eng.stop(0.1)


async def test_stored_bytes_and_memory_budget(tokens, settings):
    from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc

    eng = await engine_with(settings, max_stored_bytes_per_user=1000, max_run_memory_bytes=200 << 20)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as ch:
            stub = pb_grpc.BacktestServiceStub(ch)
            alice = tokens["alice"]
            # The memory estimate: a decade of minute bars with many indicators is refused up front.
            big = start_request(days=("2016-01-01", "2025-12-31"))
            for k in range(40):
                ind = big.strategy.indicators.add()
                ind.CopyFrom(big.strategy.indicators[0])
                ind.id = f"extra{k}"
            err = await failure(stub.StartBacktest(big, metadata=alice))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "MiB of arrays" in err.details()
            assert [v.field for d in details_of(err) if isinstance(d, error_details_pb2.BadRequest)
                    for v in d.field_violations] == ["strategy.indicators"]
            bid = await run_to_end(stub, alice)
            rec = eng.store.get(bid)
            assert rec.stored_bytes == eng.store.disk_usage(bid) > 1000
            err = await failure(stub.StartBacktest(start_request(days=SHORT), metadata=alice))
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "delete some" in err.details()
            await stub.DeleteBacktest(pb.DeleteBacktestRequest(backtest_id=bid), metadata=alice)
            await run_to_end(stub, alice)  # room again
    finally:
        await eng.stop(0.1)


async def test_list_pages_are_bounded_by_bytes(tokens, settings):
    from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc

    eng = await engine_with(settings, list_page_bytes=3000)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as ch:
            stub = pb_grpc.BacktestServiceStub(ch)
            alice = tokens["alice"]
            ids = {(await stub.StartBacktest(start_request(days=SHORT, strategy_id="x" * 200), metadata=alice)).backtest_id
                   for _ in range(5)}
            seen, token, pages = [], "", 0
            while True:
                page = await stub.ListBacktests(pb.ListBacktestsRequest(page_size=500, page_token=token), metadata=alice)
                assert page.backtests and (len(page.backtests) == 1 or page.ByteSize() <= 3000 + 100)
                seen += [b.backtest_id for b in page.backtests]
                pages += 1
                token = page.next_page_token
                if not token:
                    break
            assert pages > 1 and len(seen) == len(set(seen)) and set(seen) == ids
    finally:
        await eng.stop(0.1)


# --- malformed messages -----------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"\xff\xff\xff",                          # not a message at all
    b"\x0a\x02\xff\xfe",                      # backtest_id that is not UTF-8
    b"\x0a\x80\x80\x80\x80\x10",              # a length past the end
])
async def test_undecodable_requests_are_invalid_argument(engine, raw):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{engine.port}") as ch:
        for method, streaming in (("GetBacktest", False), ("StreamBacktest", True)):
            path = f"/hindsight.v1.BacktestService/{method}"
            if streaming:
                call = ch.unary_stream(path, request_serializer=None, response_deserializer=None)(raw)
                err = await failure(collect_with(call))
            else:
                err = await failure(ch.unary_unary(path, request_serializer=None, response_deserializer=None)(raw))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, err)
            assert "hindsight.v1." in err.details()


async def test_a_message_nested_too_deep_is_invalid_argument(engine):
    # StartBacktestRequest.strategy(1) → entries(5) → when(4) → `not`(6) nested 200 times.
    inner = b""
    for _ in range(200):
        inner = b"\x32" + _varint(len(inner)) + inner
    entry = b"\x22" + _varint(len(inner)) + inner
    strategy = b"\x2a" + _varint(len(entry)) + entry
    raw = b"\x0a" + _varint(len(strategy)) + strategy
    async with grpc.aio.insecure_channel(f"127.0.0.1:{engine.port}") as ch:
        err = await failure(ch.unary_unary("/hindsight.v1.BacktestService/StartBacktest",
                                           request_serializer=None, response_deserializer=None)(raw))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


async def test_concurrent_first_use_of_a_key_verifies_it_once(tokens, stub, engine):
    # Argon2 runs off the event loop; many first calls at once all succeed.
    results = await asyncio.gather(*(stub.GetCaller(pb.GetCallerRequest(), metadata=tokens["root"]) for _ in range(8)))
    assert {r.user_id for r in results} == {"root"}


@pytest.mark.parametrize("source", ["jwks-file", "jwks-url"])
async def test_jwts_verified_with_the_issuers_jwks(settings, tmp_path, source):
    """A JWKS with two keys (kid picks one), from a file or fetched from the issuer over HTTP."""
    import http.server
    import json
    import threading
    from dataclasses import replace

    from hindsight.v1 import backtest_service_pb2_grpc as pb_grpc
    from services.engine.server import create_server

    keys = {"k1": ec.generate_private_key(ec.SECP256R1()), "k2": rsa.generate_private_key(65537, 2048)}
    jwks = {"keys": []}
    for kid, key in keys.items():
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()) if kid == "k1"
                         else jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwks["keys"].append({**jwk, "kid": kid, "use": "sig"})
    server = None
    if source == "jwks-file":
        path = tmp_path / "jwks.json"
        path.write_text(json.dumps(jwks))
        changes = {"jwt_keys": path}
    else:
        body = json.dumps(jwks).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        changes = {"jwt_jwks_url": f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"}
    eng = await create_server(replace(settings, jwt_issuer="https://id.example", **changes), "127.0.0.1:0")
    await eng.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{eng.port}") as ch:
            stub = pb_grpc.BacktestServiceStub(ch)
            now = int(time.time())
            claims = {"iss": "https://id.example", "sub": "frank", "exp": now + 60}
            for kid, alg in (("k1", "ES256"), ("k2", "RS256")):
                token = jwt.encode(claims, keys[kid], algorithm=alg, headers={"kid": kid})
                me = await stub.GetCaller(pb.GetCallerRequest(), metadata=(("authorization", f"Bearer {token}"),))
                assert me.user_id == "frank" and me.auth_method == "jwt"
            # Signed by k2 but claiming to be k1: refused.
            token = jwt.encode(claims, keys["k2"], algorithm="RS256", headers={"kid": "k1"})
            err = await failure(stub.GetCaller(pb.GetCallerRequest(), metadata=(("authorization", f"Bearer {token}"),)))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
            token = jwt.encode(claims, keys["k1"], algorithm="ES256", headers={"kid": "nobody"})
            err = await failure(stub.GetCaller(pb.GetCallerRequest(), metadata=(("authorization", f"Bearer {token}"),)))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await eng.stop(0.1)
        if server is not None:
            server.shutdown()
            server.server_close()
