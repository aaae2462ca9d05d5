#!/usr/bin/env bash
# Installs goaws (an SQS/SNS emulator written in Go) for the SQS bridge's tests and the
# local stack, unless it is already there. Prints the binary's path on stdout, so
# callers can do GOAWS_BIN=$(...).
#
# goaws v0.5.x speaks the AWS JSON protocol that current @aws-sdk/client-sqs uses (v0.4.x
# only speaks the old query protocol). Its own main listens on 0.0.0.0; mailroom builds
# goaws's packages behind a ten-line main that takes a -bind address (default 127.0.0.1),
# as `goaws-mailroom`. The Go module proxy serves this exact version, but no version
# list, so `go install ...@v0.5.4` (which asks for the list) fails: build from a
# throwaway module that requires the exact version instead.
set -euo pipefail
# shellcheck source=go-build-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/go-build-env.sh"

VERSION=v0.5.4
NAME=goaws-mailroom

installed_ok() {
  [ -x "$1" ] && [ "$("$1" -version 2>/dev/null || true)" = "$VERSION" ]
}

if [ -n "${GOAWS_BIN:-}" ] && installed_ok "$GOAWS_BIN"; then
  echo "$GOAWS_BIN"
  exit 0
fi
if path=$(command -v "$NAME" 2>/dev/null) && installed_ok "$path"; then
  echo "$path"
  exit 0
fi
if installed_ok "$HOME/go/bin/$NAME"; then
  echo "$HOME/go/bin/$NAME"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-goaws: Go is not installed (needed to build goaws $VERSION)." >&2
  echo "  Install Go >= 1.21 from https://go.dev/dl/" >&2
  exit 1
fi

bin="$(go env GOPATH)/bin/$NAME"
if installed_ok "$bin"; then
  echo "$bin"
  exit 0
fi

echo "install-goaws: building goaws $VERSION with Go..." >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/go.mod" <<EOF
module mailroom.local/goaws

go 1.18

require github.com/Admiral-Piett/goaws $VERSION
EOF
cat >"$work/main.go" <<'EOF'
// goaws with a configurable listen address (upstream's main binds 0.0.0.0).
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/Admiral-Piett/goaws/app/conf"
	"github.com/Admiral-Piett/goaws/app/gosqs"
	"github.com/Admiral-Piett/goaws/app/router"
	log "github.com/sirupsen/logrus"
)

var version = "dev"

func main() {
	config := flag.String("config", "", "goaws YAML config file")
	bind := flag.String("bind", "127.0.0.1", "address to listen on")
	loglevel := flag.String("loglevel", "warn", "log level (debug, info, warn, error)")
	showVersion := flag.Bool("version", false, "print the goaws version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}
	log.SetFormatter(&log.JSONFormatter{})
	log.SetOutput(os.Stdout)
	if level, err := log.ParseLevel(*loglevel); err == nil {
		log.SetLevel(level)
	}
	env := "Local"
	if flag.NArg() > 0 {
		env = flag.Arg(0)
	}
	ports := conf.LoadYamlConfig(*config, env)
	go gosqs.PeriodicTasks(1*time.Second, make(chan bool))
	addr := net.JoinHostPort(*bind, ports[0])
	log.Warnf("GoAws %s listening on: %s", version, addr)
	log.Fatal(http.ListenAndServe(addr, router.New()))
}
EOF
mkdir -p "$(dirname "$bin")"
(cd "$work" && GOFLAGS="$GOFLAGS -mod=mod" go build -ldflags "-s -X main.version=$VERSION" -o "$bin" .) >&2
echo "$bin"
