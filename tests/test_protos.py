"""The protos: generated code is up to date, and buf lint (STANDARD rules, buf.yaml) passes.

buf comes from the @bufbuild/buf npm package that `make setup` installs (node_modules/.bin/buf).
Where it is missing the lint tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services import protogen

REPO = Path(__file__).resolve().parents[1]
BUF = REPO / "node_modules" / ".bin" / "buf"
LINT_SCRIPT = REPO / "scripts" / "lint-protos.sh"


def test_generated_code_is_not_stale():
    assert protogen.stale_files() == [], "protos/gen is stale: run `make proto` and commit protos/gen"


def _buf() -> Path:
    if not os.access(BUF, os.X_OK):
        reason = f"buf is not installed at {BUF.relative_to(REPO)} (`make setup` installs @bufbuild/buf)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return BUF


def _lint_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(LINT_SCRIPT), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PY": sys.executable, "BUF": str(_buf())})


def test_buf_lint_passes():
    result = _lint_script()
    assert result.returncode == 0, f"buf lint failed:\n{result.stdout}{result.stderr}"
    assert "OK" in result.stdout
    # The script fetched exactly the google/api protos ours import, nothing else.
    deps = sorted(p.relative_to(REPO / "build" / "buf-deps").as_posix()
                  for p in (REPO / "build" / "buf-deps").rglob("*.proto"))
    assert deps == ["google/api/annotations.proto", "google/api/field_behavior.proto",
                    "google/api/http.proto", "google/api/httpbody.proto"]


def test_buf_lint_catches_a_violation(tmp_path):
    """The configuration is not vacuous: a badly named message in our module fails the lint."""
    assert _lint_script().returncode == 0  # fills build/buf-deps
    shutil.copy(REPO / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(REPO / "protos" / "hindsight", tmp_path / "protos" / "hindsight")
    shutil.copytree(REPO / "build" / "buf-deps", tmp_path / "build" / "buf-deps")
    with open(tmp_path / "protos" / "hindsight" / "v1" / "results.proto", "a") as f:
        f.write("\nmessage bad_name {\n  string Field = 1;\n}\n")
    result = subprocess.run([str(_buf()), "lint", "--error-format=json", "protos"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    rules = {json.loads(line)["type"] for line in result.stdout.splitlines() if line.strip()}
    assert {"MESSAGE_PASCAL_CASE", "FIELD_LOWER_SNAKE_CASE"} <= rules, result.stdout + result.stderr
