#!/usr/bin/env bash
# Builds (once) and prints the paths of the toolchains the deploy/ tests use, all from the Go
# module proxy (the only way this project's machines reach them), cached under .cache/ by
# version so the first run takes minutes and later runs none:
#   helm       .cache/helm/<version>/helm
#   kustomize  .cache/kustomize/<version>/kustomize
#   otelcol    .cache/otelcol/<version>-<manifest hash>/otelcol-scorecar (Collector builder, ocb,
#              with the components listed in deploy/test/otelcol-builder.yaml)
#   checker    .cache/deploy-check/<source hash>/deploy-check (deploy/test: strict decoding of
#              manifests against the Kubernetes API types)
# Usage: scripts/deploy-tools.sh [helm|kustomize|otelcol|checker]...   (default: all four)
# Prints one `name=path` line per tool on stdout; build logs go to stderr. Fails (non-zero) when
# a tool cannot be built: CI must fail, never skip, then.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# kustomize v5.8.3 needs Go 1.27: v5.8.2 is the newest that builds with Go 1.26.
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.2}"
# The Collector core release; scripts/collector-kafka pins the same one (contrib v0.165.1).
OTELCOL_VERSION="${OTELCOL_VERSION:-v0.165.0}"

export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "deploy-tools: Go is needed to build the toolchains" >&2; exit 1; }
# Module and build caches under .cache/go, shared with scripts/collector-kafka (same modules).
export GOMODCACHE="$ROOT/.cache/go/mod" GOCACHE="$ROOT/.cache/go/build" GOTOOLCHAIN=local GOFLAGS=-mod=mod

# One build at a time: test files running in parallel may all ask for the tools on a fresh clone.
mkdir -p "$ROOT/.cache"
exec 9>"$ROOT/.cache/deploy-tools.lock"
flock 9

hash_of() { cat "$@" | sha256sum | cut -c1-12; }

# `go install mod/cmd@version` into a versioned directory; a directory is complete only once the
# binary is renamed into place, so an interrupted build is redone, never half-used.
install_tool() { # name package version
  local name="$1" pkg="$2" version="$3" dir="$ROOT/.cache/$1/$3"
  if [ ! -x "$dir/$name" ]; then
    echo "deploy-tools: building $name $version (first time only; minutes)" >&2
    mkdir -p "$dir/.bin"
    GOBIN="$dir/.bin" go install "$pkg@$version" >&2
    mv "$dir/.bin/$name" "$dir/$name"
  fi
  echo "$name=$dir/$name"
}

build_otelcol() {
  local manifest="$ROOT/deploy/test/otelcol-builder.yaml"
  local dir="$ROOT/.cache/otelcol/$OTELCOL_VERSION-$(hash_of "$manifest")"
  if [ ! -x "$dir/otelcol-scorecar" ]; then
    local builder_dir="$ROOT/.cache/otelcol/builder-$OTELCOL_VERSION"
    if [ ! -x "$builder_dir/builder" ]; then
      echo "deploy-tools: building the Collector builder $OTELCOL_VERSION" >&2
      mkdir -p "$builder_dir/.bin"
      GOBIN="$builder_dir/.bin" go install "go.opentelemetry.io/collector/cmd/builder@$OTELCOL_VERSION" >&2
      mv "$builder_dir/.bin/builder" "$builder_dir/builder"
    fi
    echo "deploy-tools: building a Collector with the builder (first time only; minutes)" >&2
    rm -rf "$dir.src" && mkdir -p "$dir.src"
    # The manifest names its output relative to the working directory.
    (cd "$dir.src" && "$builder_dir/builder" --config "$manifest" >&2)
    mkdir -p "$dir"
    mv "$dir.src/otelcol-scorecar/otelcol-scorecar" "$dir/otelcol-scorecar"
    rm -rf "$dir.src"
  fi
  echo "otelcol=$dir/otelcol-scorecar"
}

build_checker() {
  local src="$ROOT/deploy/test"
  local dir="$ROOT/.cache/deploy-check/$(hash_of "$src/go.mod" "$src/go.sum" "$src"/*.go)"
  if [ ! -x "$dir/deploy-check" ]; then
    echo "deploy-tools: building deploy/test (the manifest checker)" >&2
    mkdir -p "$dir"
    (cd "$src" && go build -o "$dir/deploy-check.tmp" . >&2)
    mv "$dir/deploy-check.tmp" "$dir/deploy-check"
  fi
  echo "checker=$dir/deploy-check"
}

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(helm kustomize otelcol checker)
for t in "${tools[@]}"; do
  case "$t" in
    helm) install_tool helm "helm.sh/helm/v3/cmd/helm" "$HELM_VERSION" ;;
    kustomize) install_tool kustomize "sigs.k8s.io/kustomize/kustomize/v5" "$KUSTOMIZE_VERSION" ;;
    otelcol) build_otelcol ;;
    checker) build_checker ;;
    *) echo "deploy-tools: unknown tool $t" >&2; exit 2 ;;
  esac
done
