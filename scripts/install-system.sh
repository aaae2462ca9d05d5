#!/usr/bin/env bash
# System packages for the full local stack on a fresh Debian/Ubuntu machine (run as root):
# Dovecot provides the real IMAP server and LMTP delivery. Safe to run repeatedly.
set -euo pipefail

# chromium: the Web UI browser test (playwright-core drives Debian's build, never a download).
PACKAGES=(dovecot-imapd dovecot-lmtpd chromium)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-system: run as root (apt-get needs it)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system: apt-get not found; install ${PACKAGES[*]} with your package manager" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  # dpkg -s also succeeds for removed-but-configured packages; require "install ok installed".
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system: already installed: ${PACKAGES[*]}"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The local stack runs dovecot itself with its own config; the package's service must not start
# (and cannot, without systemd), so postinst invoke-rc.d calls are refused via policy-rc.d.
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
trap 'if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
echo "install-system: installed ${missing[*]}"
