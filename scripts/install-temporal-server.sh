#!/usr/bin/env bash
# Installs the real Temporal server, its SQL schema tool and the Temporal Web UI server with
# Go, for the local stack on PostgreSQL (scripts/stack/temporal-postgres.ts), skipping each
# binary that is already there in the right version. Prints the three paths on stdout, one
# per line, the UI server's last.
#
#   temporal-server     go.temporal.io/server/cmd/server          (the server, all services)
#   temporal-sql-tool   go.temporal.io/server/cmd/tools/sql       (create / setup-schema / update-schema)
#   temporal-ui-server  github.com/temporalio/ui-server/v2/cmd/server (Web UI, assets embedded)
#
# The cmd packages are all named `server` or `sql`, which is what `go install` would call
# the binaries; each is built into a temporary GOBIN and renamed into $(go env GOPATH)/bin.
# The versions are in scripts/versions.env, which docker-compose.yml's images must match
# (test/unit/versions.test.ts). A binary of another version is rebuilt into Go's bin directory.
set -euo pipefail

# shellcheck source=versions.env
. "$(dirname "${BASH_SOURCE[0]}")/versions.env"
# shellcheck source=go-build-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/go-build-env.sh"
SERVER_VERSION=$TEMPORAL_SERVER_VERSION
UI_VERSION=$TEMPORAL_UI_VERSION

# Go's default GOPATH, for shells where Go itself is not on PATH.
bindir="$HOME/go/bin"
if command -v go >/dev/null 2>&1; then
  bindir="$(go env GOPATH)/bin"
fi
mkdir -p "$bindir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Whether $1 is an executable reporting version $2 (`--version`); an older build is replaced.
installed_ok() {
  [ -x "$1" ] && "$1" --version 2>/dev/null | grep -qF "${2#v}"
}

# install <name> <package@version>: go install into a scratch GOBIN, then rename into bindir.
# found <name> <version>: the path of a binary of that version (on PATH or in bindir), or fail.
found() {
  local path
  if path=$(command -v "$1" 2>/dev/null) && installed_ok "$path" "$2"; then
    echo "$path"
  elif installed_ok "$bindir/$1" "$2"; then
    echo "$bindir/$1"
  else
    return 1
  fi
}

install() {
  local name=$1 pkg=$2 out="$bindir/$1" path
  if path=$(found "$name" "${pkg##*@}"); then
    echo "$path"
    return
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "install-temporal-server: Go is not installed (needed to build $name from $pkg)." >&2
    echo "  Install Go >= 1.25 (go.temporal.io/server v1.29 needs it) from https://go.dev/dl/" >&2
    exit 1
  fi
  echo "install-temporal-server: building $name from $pkg (about two minutes for the server on two cores)..." >&2
  local start=$SECONDS
  rm -rf "$work/bin"
  GOBIN="$work/bin" go install "$pkg" >&2
  local built
  built=$(find "$work/bin" -maxdepth 1 -type f -perm -u+x | head -n 1)
  if [ -z "$built" ]; then
    echo "install-temporal-server: go install $pkg produced no binary" >&2
    exit 1
  fi
  mv "$built" "$out"
  echo "install-temporal-server: $name built in $((SECONDS - start)) s" >&2
  echo "$out"
}

server_pkg="go.temporal.io/server/cmd/server@$SERVER_VERSION"
sql_pkg="go.temporal.io/server/cmd/tools/sql@$SERVER_VERSION"
# The server and its SQL tool come from one module at one version: when both are missing, one
# `go install` builds them together (the packages loaded once, the two links side by side
# instead of one after the other). Then install() below finds both.
if command -v go >/dev/null 2>&1 && ! found temporal-server "$SERVER_VERSION" >/dev/null \
  && ! found temporal-sql-tool "$SERVER_VERSION" >/dev/null; then
  echo "install-temporal-server: building temporal-server and temporal-sql-tool $SERVER_VERSION in one go install..." >&2
  start=$SECONDS
  GOBIN="$work/pair" go install "$server_pkg" "$sql_pkg" >&2
  mv "$work/pair/server" "$bindir/temporal-server"
  mv "$work/pair/sql" "$bindir/temporal-sql-tool"
  echo "install-temporal-server: temporal-server and temporal-sql-tool built in $((SECONDS - start)) s" >&2
fi
install temporal-server "$server_pkg"
install temporal-sql-tool "$sql_pkg"
install temporal-ui-server "github.com/temporalio/ui-server/v2/cmd/server@$UI_VERSION"
