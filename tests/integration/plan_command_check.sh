#!/usr/bin/env bash
# plan_command_check.sh TANDEM RULES_DIR: `tandem plan` end to end on a generated model: JSON
# totals agree with the file, an over-budget plan exits non-zero naming the device, every
# shipped rule file plans on a machine it fits, a rule that matches nothing is a warning.
set -euo pipefail
tandem=$1 rules=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$tandem" generate -o "$dir/m.gguf" -q >/dev/null

"$tandem" plan -m "$dir/m.gguf" --rules "$rules/default-1gpu.yaml" --assume-gpu test=8GiB --json >"$dir/p.json"
python3 - "$dir/p.json" "$dir/m.gguf" <<'PY'
import json, os, sys
p = json.load(open(sys.argv[1]))
assert p["fits"], p["problems"]
by_kind = p["model"]["bytes_by_kind"]
mem = {d["device"]: d for d in p["memory"]}
cpu_kind = p["model"]["cpu_bytes_by_kind"]  # as the expert engine lays them out on this CPU
assert mem["host"]["total"] == cpu_kind["routed_experts"], (mem["host"], cpu_kind)
assert by_kind["routed_experts"] <= cpu_kind["routed_experts"] <= 2.7 * by_kind["routed_experts"], cpu_kind
assert mem["gpu:0"]["weights"] == sum(by_kind.values()) - by_kind["routed_experts"]
assert sum(by_kind.values()) < os.path.getsize(sys.argv[2])  # tensor data plus the header
assert all(l["attention"] == "gpu:0" for l in p["layers"])
PY

# Over budget: non-zero exit, the device and a remedy named.
if "$tandem" plan -m "$dir/m.gguf" --rules "$rules/default-1gpu.yaml" --assume-gpu tiny=1MiB >"$dir/out" 2>"$dir/err"; then
  echo "an over-budget plan exited 0"; exit 1
fi
grep -q "gpu:0 needs" "$dir/err" || { cat "$dir/err"; exit 1; }
grep -q "does NOT fit" "$dir/out" || { cat "$dir/out"; exit 1; }

# Every shipped rule file plans (two nodes, two GPUs: what the richest file asks for).
for r in "$rules"/*.yaml; do
  "$tandem" plan -m "$dir/m.gguf" --rules "$r" --topology "pack:2 numa:1(memory=8GiB) core:2 pu:1" \
    --assume-gpu a=8GiB --assume-gpu b=8GiB >"$dir/out" 2>&1 || { echo "$r:"; cat "$dir/out"; exit 1; }
done

# A rule that matches nothing, and --explain.
printf 'rules:\n  - match: {kind: routed_experts, layers: "90-"}\n    place: cpu:numa0\ndefaults: {place: cpu}\n' >"$dir/typo.yaml"
"$tandem" plan -m "$dir/m.gguf" --rules "$dir/typo.yaml" --no-gpu --explain blk.1.ffn_up_exps.weight >"$dir/out"
grep -q "typo.yaml:2: this rule matches nothing" "$dir/out" || { cat "$dir/out"; exit 1; }
grep -q "blk.1.ffn_up_exps.weight: cpu" "$dir/out" || { cat "$dir/out"; exit 1; }
if "$tandem" plan -m "$dir/m.gguf" --no-gpu --explain blk.1.no_such.weight >/dev/null 2>"$dir/err"; then
  echo "--explain of a missing tensor exited 0"; exit 1
fi
grep -q "no tensor 'blk.1.no_such.weight'" "$dir/err" || { cat "$dir/err"; exit 1; }
echo "plan command checks passed"
