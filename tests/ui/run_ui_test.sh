#!/bin/sh
# Runs the browser test: installs playwright-core (pinned in package-lock.json) into
# tests/ui/node_modules on first use, then runs node's test runner.
# Environment: TUNELOOPD (required), CHROMIUM, UI_ARTEFACT_DIR (see ui_test.mjs).
set -eu
cd "$(dirname "$0")"
if [ ! -f node_modules/playwright-core/package.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
exec node --test --test-reporter=spec ui_test.mjs
