#!/usr/bin/env bash
# `npm test`: install what is missing, typecheck, then run every vitest test.
# Arguments go to vitest: npm test -- test/config.test.ts
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
npm run --silent typecheck
exec npx vitest run "$@"
