# Sourced by the install scripts that build Go programs (temporal CLI, versitygw, goaws, the
# Temporal server trio) and by setup.sh for compose-check: the same build settings for all,
# so they share Go's build cache (a package built for one is reused by the next) and link
# faster (versitygw's link: 7.5 CPU s through gcc before, 2.3 now; docs/contributing.md#first-run).
#
#   CGO_ENABLED=0  none of these programs needs C: without cgo, no gcc runs for runtime/cgo,
#                  net, os/user and plugin, and the linker links internally. versitygw
#                  imports `plugin`, which with cgo forces an external link through gcc
#                  (its binary was dynamically linked); now it is static, like the others.
#   -trimpath      no build paths in the binaries, so a build does not depend on where the
#                  scratch module or GOPATH was.
#   -ldflags=-s    no symbol table and no DWARF (since Go 1.22, -s implies -w): less for the
#                  linker to write. Stack traces and pprof profiles still name functions
#                  (they read the runtime's own tables, which stay).
#
# Not set: -p (it defaults to the number of cores). A caller's GOFLAGS come first; the
# command line of a build (goaws's -ldflags -X) overrides GOFLAGS.
export CGO_ENABLED="${CGO_ENABLED:-0}"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath -ldflags=-s"
