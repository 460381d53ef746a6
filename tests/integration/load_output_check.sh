#!/usr/bin/env bash
# load_output_check.sh TANDEM: what `tandem logits` shows on stderr (not a terminal) while it
# loads a generated model: the memory line first, then plain progress lines ending in the done
# line, no carriage returns.
set -euo pipefail
tandem=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$tandem" generate -o "$dir/m.gguf" -q >/dev/null
echo '["hello"]' >"$dir/p.json"
"$tandem" logits --model "$dir/m.gguf" --prompts "$dir/p.json" --out "$dir/o" --greedy 1 --cpu-only \
  >/dev/null 2>"$dir/err"
fail() { echo "$1"; cat "$dir/err"; exit 1; }
grep -q $'\r' "$dir/err" && fail "carriage return in non-terminal output"
budget=$(grep -n "^loading m.gguf: .* host RAM, KV cache " "$dir/err" | cut -d: -f1 | head -1)
start=$(grep -n "^loading .* MiB (mapping)$" "$dir/err" | cut -d: -f1 | head -1)
done=$(grep -n "^loaded .* MiB in .* s" "$dir/err" | cut -d: -f1 | head -1)
[[ -n $budget && -n $start && -n $done ]] || fail "missing budget, start or done line"
((budget < start && start < done)) || fail "lines out of order"
echo ok
