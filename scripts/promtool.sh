#!/usr/bin/env bash
# Prints the path of a promtool built from the Prometheus Go module (through the Go module
# proxy, the only way this project's machines reach Prometheus), cached under .cache/promtool by
# version: the first build takes minutes, later runs none. Fails (non-zero) when it cannot build.
set -euo pipefail
cd "$(dirname "$0")/.."
# Prometheus 3.x's Go module is versioned v0.3xx (v0.316.0 = Prometheus 3.16).
VERSION="${PROMTOOL_VERSION:-v0.316.0}"
DIR="$PWD/.cache/promtool/$VERSION"
BIN="$DIR/promtool"
if [ ! -x "$BIN" ]; then
  command -v go >/dev/null || { echo "promtool: Go is needed to build it" >&2; exit 1; }
  mkdir -p "$DIR"
  # The module cache is Go's own (shared by every clone on the machine).
  GOBIN="$DIR" GOFLAGS=-mod=mod \
    go install "github.com/prometheus/prometheus/cmd/promtool@$VERSION" >&2
fi
"$BIN" --version >/dev/null
echo "$BIN"
