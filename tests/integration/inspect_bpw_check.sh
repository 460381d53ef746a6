#!/usr/bin/env bash
# inspect_bpw_check.sh TANDEM: a generated model with i-quant experts, written in 3 shards, opens
# with `tandem inspect`, which lists each tensor kind with its type and bits per weight.
set -euo pipefail
tandem=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$tandem" generate --out "$dir/m.gguf" --preset tiny-v2 --layers 2 --experts 4 --experts-used 2 --vocab 512 \
  --type q8_0 --expert-type iq2_xxs --expert-down-type iq1_m --split 3 --quiet
first=$(ls "$dir"/m*.gguf | sort | head -1)
"$tandem" inspect "$first" >"$dir/out.txt"
cat "$dir/out.txt"
fail() { echo "FAIL: $*"; exit 1; }
grep -q "3 shard(s)" "$dir/out.txt" || fail "not read as 3 shards"
# IQ2_XXS: 66 bytes per 256 weights = 2.0625 bpw; IQ1_M: 56 / 256 = 1.75; Q8_0: 34 / 32 = 8.5.
grep -E "^  ffn_gate_exps.weight +1 x iq2_xxs .* 2\.062 bpw" "$dir/out.txt" >/dev/null || fail "ffn_gate_exps bpw"
grep -E "^  ffn_down_exps.weight +1 x iq1_m .* 1\.75 bpw" "$dir/out.txt" >/dev/null || fail "ffn_down_exps bpw"
grep -E "^  iq2_xxs +2 tensors .* 2\.062 bpw" "$dir/out.txt" >/dev/null || fail "iq2_xxs type line"
grep -E "^  attn_output.weight +[0-9]+ x q8_0 .* 8\.5 bpw" "$dir/out.txt" >/dev/null || fail "attn_output bpw"
if grep -q "cannot compute" "$dir/out.txt"; then fail "a type reported as not computable"; fi
echo "ok"
