"""`hindsight users add|list|revoke` on a real users database, and the engine that reads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from services.engine.auth import Authenticator, Unauthenticated, UserStore

REPO = Path(__file__).resolve().parents[1]


def hindsight(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"HINDSIGHT_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "services.cli", "users", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_users_add_list_revoke(tmp_path):
    added = hindsight(tmp_path, "add", "alice", "--label", "laptop")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("hsk_") and "shown this once" in added.stderr
    assert hindsight(tmp_path, "add", "root", "--admin").returncode == 0
    again = hindsight(tmp_path, "add", "alice")
    assert again.returncode == 2 and "already exists" in again.stderr
    second = hindsight(tmp_path, "add", "alice", "--key-only").stdout.strip()
    bad = hindsight(tmp_path, "add", "../x")
    assert bad.returncode == 2 and "invalid user id" in bad.stderr

    listed = hindsight(tmp_path, "list").stdout
    assert "alice\tuser" in listed and "root\tadmin" in listed and "laptop" in listed
    assert token not in listed and token.split("_", 2)[2] not in listed  # keys are never shown again

    users = UserStore(tmp_path / "auth" / "users.sqlite3")
    auth = Authenticator(users)
    md = {"authorization": f"Bearer {token}"}
    assert auth.authenticate(md, "ipv4:10.0.0.9:1234").user_id == "alice"
    key_id = token.split("_")[1]
    revoked = hindsight(tmp_path, "revoke", key_id)
    assert revoked.returncode == 0 and "revoked 1 key" in revoked.stdout
    try:
        auth.authenticate(md, "ipv4:10.0.0.9:1234")
        raise AssertionError("a revoked key was accepted")
    except Unauthenticated as exc:
        assert "revoked" in exc.message
    assert auth.authenticate({"authorization": f"Bearer {second}"}, "ipv4:10.0.0.9:1").user_id == "alice"
    assert hindsight(tmp_path, "revoke", "alice").stdout.strip() == "revoked 1 key"
    assert hindsight(tmp_path, "revoke", "alice").returncode == 1
    users.close()
