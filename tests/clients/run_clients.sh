#!/usr/bin/env bash
# run_clients.sh TANDEM: `tandem serve` on 127.0.0.1 over a generated tiny model, then
# clients.mjs (the openai npm SDK and ollama-js) against it. Installs nothing: skips (77) when
# node or tests/clients/node_modules is missing (scripts/install-deps.sh runs `npm ci` here).
set -euo pipefail
tandem=$1
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null; then echo "skipped: node is not installed"; exit 77; fi
for pkg in openai ollama; do
  if [ ! -d "$here/node_modules/$pkg" ]; then
    echo "skipped: $here/node_modules/$pkg is missing (npm ci --prefix $here)"; exit 77
  fi
done

dir=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
"$tandem" generate --preset tiny-v3 --type q8_0 -o "$dir/m.gguf" -q >/dev/null  # q8_0: quick to write
# The R1 prompt format opens <think>: replies are reasoning, which both clients must show apart.
"$tandem" serve --model "$dir/m.gguf" --alias tiny --chat-format deepseek-r1 --host 127.0.0.1 --port 0 --ctx 1024 --threads 1 \
  --parallel 4 2>"$dir/serve.log" &
pid=$!
port=""
for _ in $(seq 1 600); do  # at most 60 s for the model to load
  port=$(sed -n 's|.*on http://127\.0\.0\.1:\([0-9]*\)/v1.*|\1|p' "$dir/serve.log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "tandem serve exited:"; cat "$dir/serve.log"; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "tandem serve did not start in 60 s:"; cat "$dir/serve.log"; exit 1; }

status=0
timeout 300 node "$here/clients.mjs" "http://127.0.0.1:$port" tiny || status=$?
if [ "$status" != 0 ]; then echo "--- server log"; tail -n 50 "$dir/serve.log"; fi
exit "$status"
