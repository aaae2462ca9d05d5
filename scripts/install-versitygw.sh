#!/usr/bin/env bash
# Installs Versity S3 Gateway (versitygw), the S3 server of the local stack, the demo, the
# chaos stack and the tests (scripts/stack/s3.ts), unless the right version is already
# there. docker-compose.yml runs the same server from its published image. Prints the
# binary's path on stdout, so callers can do S3_SERVER_BIN=$(...).
#
# `go install` builds it through the Go module proxy (about a minute on two cores). Its
# own --version prints "git" for such builds, so the version is read from the module
# information Go embeds in every binary (`go version -m`).
set -euo pipefail
# shellcheck source=go-build-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/go-build-env.sh"

VERSION=v1.8.0
NAME=versitygw
PKG=github.com/versity/versitygw/cmd/versitygw

installed_ok() {
  [ -x "$1" ] && command -v go >/dev/null 2>&1 \
    && go version -m "$1" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+github.com/versity/versitygw[[:space:]]+$VERSION([[:space:]]|$)"
}

for candidate in "${S3_SERVER_BIN:-}" "$(command -v "$NAME" 2>/dev/null || true)" "$HOME/go/bin/$NAME"; do
  if [ -n "$candidate" ] && installed_ok "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done

if ! command -v go >/dev/null 2>&1; then
  echo "install-versitygw: Go is not installed (needed to build versitygw $VERSION)." >&2
  echo "  Install Go >= 1.24 from https://go.dev/dl/" >&2
  exit 1
fi

bin="$(go env GOPATH)/bin/$NAME"
if installed_ok "$bin"; then
  echo "$bin"
  exit 0
fi

echo "install-versitygw: building versitygw $VERSION with Go (about a minute)..." >&2
start=$SECONDS
GOBIN="$(dirname "$bin")" go install "$PKG@$VERSION" >&2
echo "install-versitygw: built in $((SECONDS - start)) s" >&2
echo "$bin"
