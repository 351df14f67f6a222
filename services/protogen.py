"""Compile protos/ into the Python package `hindsight.v1` (protos/gen/hindsight/v1).

`python -m services.protogen` regenerates it; `--check` compiles into a temporary folder
and fails if the committed files differ (a test runs the same check).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO / "protos"
GEN_ROOT = PROTO_ROOT / "gen"
PACKAGE_DIR = Path("hindsight") / "v1"


def include_paths() -> list[str]:
    """Import roots: our protos, googleapis-common-protos, and protobuf's well-known types."""
    import google.api  # googleapis-common-protos ships its .proto files beside the modules
    import grpc_tools

    googleapis = Path(next(iter(google.api.__path__))).parent.parent
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    return [str(PROTO_ROOT), str(googleapis), str(well_known)]


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))


def generate(out_root: Path) -> None:
    from grpc_tools import protoc

    (out_root / PACKAGE_DIR).mkdir(parents=True, exist_ok=True)
    # source_info.binpb: our files with their comments (the gateway's OpenAPI descriptions;
    # generated Python descriptors carry none).
    args = ["protoc", *[f"-I{p}" for p in include_paths()],
            f"--python_out={out_root}", f"--pyi_out={out_root}", f"--grpc_python_out={out_root}",
            f"--descriptor_set_out={out_root / PACKAGE_DIR / 'source_info.binpb'}", "--include_source_info",
            *proto_files()]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for pkg in (out_root / "hindsight", out_root / PACKAGE_DIR):
        init = pkg / "__init__.py"
        if not init.exists():
            init.write_text('"""Generated from protos/ by `make proto`; do not edit."""\n')


def stale_files(committed: Path = GEN_ROOT) -> list[str]:
    """Generated files that differ from a fresh compile (empty when up to date)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        out = []
        for path in sorted(fresh.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(fresh)
                mine = committed / rel
                if not mine.exists() or not filecmp.cmp(path, mine, shallow=False):
                    out.append(str(rel))
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if generated code is stale")
    args = parser.parse_args(argv)
    os.chdir(REPO)
    if args.check:
        stale = stale_files()
        if stale:
            print("stale generated code (run `make proto`): " + ", ".join(stale), file=sys.stderr)
            return 1
        print("generated code is up to date")
        return 0
    generate(GEN_ROOT)
    print(f"generated {PACKAGE_DIR} in {GEN_ROOT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
