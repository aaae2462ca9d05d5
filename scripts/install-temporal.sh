#!/usr/bin/env bash
# Installs the Temporal CLI (which includes the dev server) with Go, unless it is already
# there. Prints the binary's path on stdout, so callers can do TEMPORAL_CLI=$(...).
set -euo pipefail

# The version is pinned in scripts/versions.env: v1.5.1, the last tag `go install` accepts
# (later go.mod files have replace directives; docs/production.md, "Pinned versions").
# shellcheck source=versions.env
. "$(dirname "${BASH_SOURCE[0]}")/versions.env"
VERSION=$TEMPORAL_CLI_VERSION

if path=$(command -v temporal 2>/dev/null); then
  echo "$path"
  exit 0
fi

# Go's default GOPATH, for shells where Go itself is not on PATH.
if [ -x "$HOME/go/bin/temporal" ]; then
  echo "$HOME/go/bin/temporal"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-temporal: Go is not installed (needed to build the temporal CLI)." >&2
  echo "  Install Go >= 1.23 from https://go.dev/dl/, or install the CLI another way: https://docs.temporal.io/cli#install" >&2
  exit 1
fi

bin="$(go env GOPATH)/bin/temporal"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

echo "install-temporal: building temporal CLI $VERSION with Go (a few minutes)..." >&2
go install "github.com/temporalio/cli/cmd/temporal@$VERSION" >&2
echo "$bin"
