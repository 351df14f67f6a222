"""The dashboard's files as the gateway serves them (no browser, no engine needed).

`/` is the page, `/ui/…` its files, `/ui/strategies.json` the examples, `/ui/vendor/…` the chart
library from node_modules; none of it shadows the API, and the page loads nothing from elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from services.gateway.app import build_app
from services.gateway.settings import GatewaySettings

from .conftest import EXAMPLES, REPO

STATIC = REPO / "services" / "gateway" / "static"
CHARTS = REPO / "node_modules" / "lightweight-charts" / "dist" / "lightweight-charts.standalone.production.js"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # Port 1: nothing listens there, so API calls answer 503 without waiting.
    app = build_app(settings=GatewaySettings(engine_addr="127.0.0.1:1", default_timeout_s=2.0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as c:
        yield c
    await app.state.engine.close()


async def test_root_is_the_page(client: httpx.AsyncClient) -> None:
    res = await client.get("/")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    assert res.headers["cache-control"] == "no-cache"
    assert 'src="ui/js/main.js"' in res.text
    assert (await client.head("/")).status_code == 200


async def test_the_page_references_only_its_own_files(client: httpx.AsyncClient) -> None:
    html = (await client.get("/")).text
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs
    for ref in refs:
        assert not re.match(r"^(https?:)?//", ref), f"{ref} would leave the gateway (the page must work offline)"


@pytest.mark.parametrize("path, media", [("/ui/app.css", "text/css"), ("/ui/js/main.js", "javascript")])
async def test_assets_are_served_with_their_types(client: httpx.AsyncClient, path: str, media: str) -> None:
    res = await client.get(path)
    assert res.status_code == 200 and media in res.headers["content-type"]


def test_every_module_import_resolves() -> None:
    modules = sorted((STATIC / "js").glob("*.js"))
    assert modules
    for module in modules:
        for target in re.findall(r"""^import .* from '(\./[^']+)';$""", module.read_text(), re.MULTILINE):
            assert (module.parent / target).is_file(), f"{module.name} imports missing {target}"
        assert not re.search(r"""from ['"](https?:)?//""", module.read_text()), module.name


async def test_example_strategies_are_listed_with_their_contents(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/ui/strategies.json")).json()["strategies"]
    files = sorted(p.name for p in EXAMPLES.glob("*.json"))
    assert [s["file"] for s in listed] == files
    for s in listed:
        assert s["strategy"] == json.loads((EXAMPLES / s["file"]).read_text())
        assert s["name"] == s["strategy"]["name"]


async def test_chart_library_is_served_from_node_modules_when_installed(client: httpx.AsyncClient) -> None:
    res = await client.get("/ui/vendor/lightweight-charts.standalone.production.js")
    if CHARTS.is_file():
        assert res.status_code == 200 and "javascript" in res.headers["content-type"]
        assert res.content == CHARTS.read_bytes()
    else:
        assert res.status_code == 404  # the page then shows how to install it


@pytest.mark.parametrize("path", ["/ui/../services/gateway/app.py", "/ui/%2e%2e/app.py", "/ui/nope.js",
                                  "/ui/vendor/../../package.json"])
async def test_nothing_outside_the_static_folders(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 404


async def test_api_routes_are_not_shadowed(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    spec = (await client.get("/openapi.json")).json()
    assert not [p for p in spec["paths"] if p == "/" or p.startswith("/ui")]
    res = await client.get("/api/v1/backtests")
    assert res.status_code == 503 and res.json()["code"] == 14  # the binding route, engine unreachable


def test_static_dir_is_packaged() -> None:
    # pyproject's package-data ships services/gateway/static/**; the page must live there.
    assert (STATIC / "index.html").is_file() and (STATIC / "app.css").is_file()
