#!/usr/bin/env bash
# `npm start`: install what is missing, build, and run the gateway on its
# embedded defaults (MQTT broker on 1883, HTTP on 8080, data in ./data).
# Extra arguments are passed to the gateway: npm start -- <args>
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
npm run --silent build
exec node gateway/dist/main.js "$@"
