#!/usr/bin/env bash
# browser_cors_check.sh TANDEM RULES_DIR CHROMIUM: a page in headless Chromium calls `tandem serve` from
# another origin. Both origins are names mapped to 127.0.0.1 inside the browser (so neither is a
# loopback origin, which the server always allows): app.test is given by --cors-origin and its
# page gets a completion; evil.test is not, and its page can read nothing and causes no work.
# Everything listens on 127.0.0.1; every wait is bounded. Exit 77 (skip) without Chromium.
set -euo pipefail
tandem=$1
rules=$2
chromium=${3:-}
[ -n "$chromium" ] && [ -x "$chromium" ] || { echo "no chromium: skipped"; exit 77; }
command -v python3 >/dev/null || { echo "no python3: skipped"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/browser_cors.XXXXXX")
server_pid=""
page_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  [ -n "$page_pid" ] && kill "$page_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$tandem" generate --preset tiny-v2 --layers 2 --vocab 512 -q -o "$work/model.gguf"

# A free port for the page server (the API server takes any free port and prints it).
page_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$tandem" serve --model "$work/model.gguf" --host 127.0.0.1 --port 0 --rules "$rules/cpu-only.yaml" \
  --cors-origin "http://app.test:$page_port" --queue 4 >"$work/server.log" 2>&1 &
server_pid=$!
api=""
for _ in $(seq 1 300); do
  api=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/server.log" | head -1 || true)
  [ -n "$api" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; echo "server exited"; exit 1; }
  sleep 0.2
done
[ -n "$api" ] || { cat "$work/server.log"; echo "server did not start"; exit 1; }

# The page: a JSON POST (so the browser sends a CORS preflight first); the outcome goes into the
# document, which --dump-dom prints once the page is idle.
cat >"$work/page.html" <<EOF
<!doctype html><html><body><pre id="out">pending</pre><script>
const out = document.getElementById('out');
fetch('$api/v1/chat/completions', {
  method: 'POST',
  headers: {'Content-Type': 'application/json'},
  body: JSON.stringify({messages: [{role: 'user', content: 'hi'}], max_tokens: 3, temperature: 0})
}).then(r => r.json().then(j => { out.textContent = 'status ' + r.status + ' object ' + j.object; }))
  .catch(e => { out.textContent = 'blocked ' + e.name; });
</script></body></html>
EOF
(cd "$work" && exec python3 -m http.server "$page_port" --bind 127.0.0.1 >"$work/page.log" 2>&1) &
page_pid=$!
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $page_port), 1)" 2>/dev/null && break
  sleep 0.1
done

visit() {  # visit ORIGIN_HOST: prints the page's outcome line
  timeout 60 "$chromium" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --user-data-dir="$work/profile-$1" --host-resolver-rules="MAP $1 127.0.0.1" \
    --virtual-time-budget=15000 --dump-dom "http://$1:$page_port/page.html" 2>"$work/chromium-$1.log" |
    grep -o '<pre id="out">[^<]*' | sed 's/<pre id="out">//'
}


allowed=$(visit app.test || true)
echo "allowed origin: $allowed"
[ "$allowed" = "status 200 object chat.completion" ] || {
  tail -20 "$work/chromium-app.test.log"; tail -20 "$work/server.log"; echo "allowed origin failed"; exit 1; }

metrics_before=$(python3 -c "import urllib.request; print(urllib.request.urlopen('$api/metrics', timeout=10).read().decode())" |
  grep -E '^tandem_prompt_tokens_total' || true)
refused=$(visit evil.test || true)
echo "other origin: $refused"
case $refused in
  blocked*) ;;
  *) tail -20 "$work/chromium-evil.test.log"; echo "a page of an origin not allowed read an answer"; exit 1 ;;
esac
metrics_after=$(python3 -c "import urllib.request; print(urllib.request.urlopen('$api/metrics', timeout=10).read().decode())" |
  grep -E '^tandem_prompt_tokens_total' || true)
[ "$metrics_before" = "$metrics_after" ] || {
  echo "the refused origin caused work: '$metrics_before' -> '$metrics_after'"; exit 1; }
echo ok
