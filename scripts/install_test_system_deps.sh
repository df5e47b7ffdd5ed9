#!/usr/bin/env bash
# System packages the test suite needs (headless Chromium for the web app's end-to-end test).
# Idempotent; skipped when chromium is already there or when we are not root.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "note: chromium missing and not root; browser tests will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends chromium >/dev/null
