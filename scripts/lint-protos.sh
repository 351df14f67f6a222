#!/usr/bin/env bash
# Lint the API protos (protos/hindsight) with buf, offline.
#
# buf.yaml (repo root) is a buf v2 workspace of two modules: protos/ (ours, linted with the
# STANDARD rules) and build/buf-deps/ (the google/api protos ours import, not linted). The
# Buf Schema Registry is not reachable from here, so this script fills build/buf-deps/ from a
# local copy: the .proto files that googleapis-common-protos installs into the venv (the same
# ones services.protogen compiles against), following their imports. google/protobuf/* are
# built into buf.
#
# Env: PY (default .venv/bin/python), BUF (default node_modules/.bin/buf, from @bufbuild/buf in
# package.json). Extra arguments go to `buf lint` (e.g. --error-format=json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=${PY:-.venv/bin/python}
BUF=${BUF:-node_modules/.bin/buf}
DEPS=build/buf-deps

if [[ ! -x $BUF ]]; then
  echo "lint-protos: buf not found at $BUF (run 'make setup', which installs @bufbuild/buf)" >&2
  exit 1
fi

googleapis=$("$PY" -c 'import google.api, pathlib; print(pathlib.Path(next(iter(google.api.__path__))).parent.parent)')

rm -rf "$DEPS"
mkdir -p "$DEPS"
imports_of() { sed -n 's/^[[:space:]]*import[[:space:]]*\(public[[:space:]]*\|weak[[:space:]]*\)\{0,1\}"\([^"]*\)".*/\2/p' "$@"; }
queue=$(imports_of protos/hindsight/*/*.proto | sort -u)
while [[ -n $queue ]]; do
  next=""
  for f in $queue; do
    case $f in hindsight/* | google/protobuf/*) continue ;; esac
    [[ -e $DEPS/$f ]] && continue
    if [[ ! -f $googleapis/$f ]]; then
      echo "lint-protos: imported $f not found under $googleapis" >&2
      exit 1
    fi
    mkdir -p "$DEPS/$(dirname "$f")"
    cp "$googleapis/$f" "$DEPS/$f"
    next+=" $(imports_of "$DEPS/$f" | tr '\n' ' ')"
  done
  queue=$(echo $next | tr ' ' '\n' | sort -u)
done

"$BUF" lint "$@" protos
echo "buf lint: protos/hindsight OK ($("$BUF" --version), STANDARD rules, see buf.yaml)"
