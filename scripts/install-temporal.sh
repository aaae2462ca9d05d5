#!/usr/bin/env bash
# Installs the Temporal CLI (which includes the dev server) with Go, unless one on a current
# enough server is already there. Prints the binary's path on stdout, so callers can do
# TEMPORAL_CLI=$(...).
#
# The versions are pinned in scripts/versions.env. The CLI is v1.5.1, the last tag `go install`
# accepts (later go.mod files have replace directives; docs/production.md, "Pinned versions"),
# but its own go.mod asks for server 1.29.1: it is built in a throwaway module that requires the
# pinned server (TEMPORAL_SERVER_VERSION, the one compose and the stack on PostgreSQL run), so
# the dev server carries that server's fixes. The Web UI it embeds stays at the CLI's 2.42.1:
# UI 2.53 needs a newer Temporal API and Nexus SDK than the CLI's Go SDK compiles with.
set -euo pipefail

# shellcheck source=versions.env
. "$(dirname "${BASH_SOURCE[0]}")/versions.env"
# shellcheck source=go-build-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/go-build-env.sh"
VERSION=$TEMPORAL_CLI_VERSION
SERVER=${TEMPORAL_SERVER_VERSION#v}

# Whether $1 is a temporal CLI whose dev server is the pinned server or newer ("temporal
# version 1.9.1 (Server 1.32.0, UI 2.54.1)"): Temporal's released binaries are accepted too.
cli_ok() {
  local server
  [ -x "$1" ] || return 1
  server=$("$1" --version 2>/dev/null | sed -n 's/.*(Server \([0-9.]*\),.*/\1/p')
  [ -n "$server" ] && [ "$(printf '%s\n%s\n' "$SERVER" "$server" | sort -V | head -n 1)" = "$SERVER" ]
}

if path=$(command -v temporal 2>/dev/null) && cli_ok "$path"; then
  echo "$path"
  exit 0
fi

# Go's default GOPATH, for shells where Go itself is not on PATH.
if cli_ok "$HOME/go/bin/temporal"; then
  echo "$HOME/go/bin/temporal"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-temporal: Go is not installed (needed to build the temporal CLI)." >&2
  echo "  Install Go >= 1.25 from https://go.dev/dl/, or install the CLI another way: https://docs.temporal.io/cli#install" >&2
  exit 1
fi

bin="$(go env GOPATH)/bin/temporal"
if cli_ok "$bin"; then
  echo "$bin"
  exit 0
fi

echo "install-temporal: building temporal CLI $VERSION on server $SERVER with Go (ten minutes or more on two cores)..." >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf 'module mailroom.local/temporal-cli\n\ngo 1.25\n' >"$work/go.mod"
(
  cd "$work"
  go get "github.com/temporalio/cli/cmd/temporal@$VERSION" "go.temporal.io/server@$TEMPORAL_SERVER_VERSION" >&2
  go build -o "$work/temporal" github.com/temporalio/cli/cmd/temporal >&2
)
mkdir -p "$(dirname "$bin")"
mv "$work/temporal" "$bin"
if ! cli_ok "$bin"; then
  echo "install-temporal: the CLI built in $bin does not report server $SERVER: $("$bin" --version)" >&2
  exit 1
fi
if path=$(command -v temporal 2>/dev/null) && [ "$path" != "$bin" ]; then
  echo "install-temporal: $path comes first on PATH and is older; set TEMPORAL_CLI=$bin or remove it" >&2
fi
echo "$bin"
