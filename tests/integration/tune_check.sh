#!/usr/bin/env bash
# tune_check.sh TANDEM: placement tuning end to end on a tiny generated model with skewed
# routing: `bench numa` writes a portrait (JSON + SVG), `profile-experts` sees the skew and writes
# hot rules, `experts: hot(stats.json, N)` plans, `tune` (bounded by --time, on lavapipe here)
# writes rules that `tandem plan` accepts, within the GPU budget, with predicted and measured
# figures in its comments; bad portrait / statistics files are clear errors.
set -euo pipefail
tandem=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export XDG_CACHE_HOME=$dir/cache

"$tandem" generate --preset tiny-v3 --experts 16 --experts-used 4 --layers 5 --route-skew 20 -o "$dir/skew.gguf" -q >/dev/null
"$tandem" generate --preset tiny-v3 --experts 16 --experts-used 4 --layers 5 -o "$dir/flat.gguf" -q >/dev/null
python3 - "$dir/prompts.json" <<'PY'
import json, random, sys
r = random.Random(7)  # varied random words: repeated ones would route alike and skew any model
w = lambda: "".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9)))
json.dump([" ".join(w() for _ in range(r.randint(8, 24))) for _ in range(16)], open(sys.argv[1], "w"))
PY

# The skew shows in the statistics: the 4 hottest of 16 experts take far more than 4/16 of the picks.
for m in skew flat; do
  "$tandem" profile-experts -m "$dir/$m.gguf" --prompts "$dir/prompts.json" --decode 4 --out "$dir/$m.stats.json" \
    --hot 4 --write-rules "$dir/$m.hot.yaml" -q >"$dir/$m.profile.txt"
done
python3 - "$dir/skew.stats.json" "$dir/flat.stats.json" <<'PY'
import json, sys
def top4_share(path):
    s = json.load(open(path))
    assert s["format"] == "tandem-expert-stats" and s["version"] == 1
    assert s["prefill_tokens"] > 0 and s["decode_tokens"] == 4 * s["prompts"], s
    shares = []
    for l in s["layers"]:
        tot = [a + b for a, b in zip(l["prefill"], l["decode"])]
        assert sum(l["decode"]) == s["decode_tokens"] * s["n_expert_used"], l
        shares.append(sum(sorted(tot)[-4:]) / sum(tot))
    return min(shares), sum(shares) / len(shares)
skew_min, skew = top4_share(sys.argv[1])
_, flat = top4_share(sys.argv[2])
print(f"top-4 share: skewed {skew:.2f} (min {skew_min:.2f}), unskewed {flat:.2f}")
assert skew_min > 0.5 and skew > flat + 0.15, (skew, flat)
PY
grep -q "hottest experts" "$dir/skew.profile.txt"
"$tandem" plan -m "$dir/skew.gguf" --rules "$dir/skew.hot.yaml" --assume-gpu 8GiB --json >"$dir/hot.plan.json"

# hot(stats.json, 4) in a rules file beside the statistics plans the same experts.
printf 'rules:\n  - match: {kind: routed_experts, experts: "hot(skew.stats.json, 4)"}\n    place: gpu:0\n  - match: {kind: routed_experts}\n    place: cpu\ndefaults: {place: gpu:0}\n' >"$dir/hotfn.yaml"
"$tandem" plan -m "$dir/skew.gguf" --rules "$dir/hotfn.yaml" --assume-gpu 8GiB --json >"$dir/hotfn.plan.json"
python3 - "$dir/hot.plan.json" "$dir/hotfn.plan.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a["fits"] and b["fits"]
moe = [l for l in b["layers"] if "routed_experts" in l]
assert moe and all(l["routed_experts"].get("gpu:0") == 4 for l in moe), moe
assert a["layers"] == b["layers"]
PY
"$tandem" plan -m "$dir/skew.gguf" --rules "$dir/hotfn.yaml" --assume-gpu 8GiB --explain blk.2.ffn_up_exps.weight >"$dir/explain.txt"
grep -q "gpu:0 \[" "$dir/explain.txt" || { cat "$dir/explain.txt"; exit 1; }

# The portrait: table, JSON file and SVG, in seconds.
"$tandem" bench numa --mb 8 --passes 1 --types q4_K --selected-isa --kernel-seconds 0.01 -q -o "$dir/portrait.json" \
  --svg "$dir/portrait.svg" >"$dir/numa.txt"
grep -q "read bandwidth" "$dir/numa.txt"
head -c 4 "$dir/portrait.svg" | grep -q "<svg"
python3 - "$dir/portrait.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
assert p["format"] == "tandem-machine-portrait" and p["version"] == 1
n = len(p["machine"]["numa_nodes"])
assert len(p["read_gb_per_s"]) == n and all(len(r) == n and min(r) > 0 for r in p["read_gb_per_s"])
assert p["scaling"] and p["kernels"] and p["kernels"][0]["gemv_gb_per_s"] > 0
for g in p["gpus"]:
    assert g["h2d_pinned_gb_per_s"] > 0 and g["d2h_pageable_gb_per_s"] > 0
PY

# Bad inputs: clear errors naming the file and the problem.
echo '{"format": "tandem-machine-portrait", "version": 1}' >"$dir/bad-portrait.json"
if "$tandem" tune -m "$dir/skew.gguf" --portrait "$dir/bad-portrait.json" --no-measure --out "$dir/x.yaml" 2>"$dir/err"; then exit 1; fi
grep -q "bad-portrait.json: top level: missing \"machine\"" "$dir/err" || { cat "$dir/err"; exit 1; }
echo '{"format": "tandem-expert-stats", "version": 1, "n_layer": 4, "n_expert": 16, "n_expert_used": 4, "layers": [{"layer": 1, "prefill": [1], "decode": []}]}' >"$dir/bad-stats.json"
if "$tandem" tune -m "$dir/skew.gguf" --portrait "$dir/portrait.json" --stats "$dir/bad-stats.json" --no-measure --out "$dir/x.yaml" 2>"$dir/err"; then exit 1; fi
grep -q "bad-stats.json: layers\[0\].prefill: 1 counts, but n_expert is 16" "$dir/err" || { cat "$dir/err"; exit 1; }

# Recorded portraits: the search writes rules `tandem plan` accepts on that machine, within budget.
fixtures=$(dirname "$0")/../unit/placement/portraits
"$tandem" tune -m "$dir/skew.gguf" --portrait "$fixtures/numa2-gpu1.json" --stats "$dir/skew.stats.json" --no-measure \
  --gpu-budget 1100MiB --out "$dir/fixture.yaml" >"$dir/fixture.txt"
"$tandem" plan -m "$dir/skew.gguf" --rules "$dir/fixture.yaml" --topology "pack:2 numa:1(memory=256GiB) core:16 pu:1" \
  --assume-gpu 1100MiB >/dev/null
grep -q "^# Measured: not measured" "$dir/fixture.yaml"

# A GPU budget that holds only part of the experts: the builder keeps a workspace and a margin
# (1 GiB + 5%) free, so the tiny model's experts fit from about 1.06 GiB; step up to 8-40 of 48.
budget=""
for mib in $(seq 1080 1100); do
  "$tandem" tune -m "$dir/skew.gguf" --portrait "$dir/portrait.json" --no-measure --gpu-budget ${mib}MiB \
    --out "$dir/probe.yaml" >/dev/null 2>"$dir/probe.err"
  room=$(sed -n 's/.*room for \([0-9]*\) routed experts.*/\1/p' "$dir/probe.err")
  if [ "${room:-0}" -ge 8 ] && [ "$room" -le 40 ]; then budget=${mib}MiB; break; fi
done

# The tuner for real, bounded by --time: lavapipe is GPU 0 here when the portrait has one.
[ -n "$budget" ] || budget=1100MiB  # no GPU in the portrait: the search is CPU-only
"$tandem" tune -m "$dir/skew.gguf" --portrait "$dir/portrait.json" --stats "$dir/skew.stats.json" --time 90s -p 16 -n 4 \
  --measure 1 --gpu-budget $budget --out "$dir/mine.yaml" --report "$dir/report.json" >"$dir/tune.txt" 2>"$dir/tune.err" ||
  { cat "$dir/tune.txt" "$dir/tune.err"; exit 1; }
grep -q "^\[tune " "$dir/tune.err"
grep -q "^# For: " "$dir/mine.yaml"
grep -q "^# Measured: decode" "$dir/mine.yaml" || { cat "$dir/mine.yaml" "$dir/tune.err"; exit 1; }
"$tandem" plan -m "$dir/skew.gguf" --rules "$dir/mine.yaml" >/dev/null
python3 - "$dir/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r[0]["name"] == "automatic" and "measured_decode" in r[0], r[0]
measured = [c for c in r if "measured_decode" in c]
assert all(c["measured_decode"] > 0 and c["measured_prefill"] > 0 and c["predicted_decode"] > 0 for c in measured)
assert sum(c["chosen"] for c in r) == 1
PY
cat "$dir/tune.txt"

# Ctrl-C while it measures: a clean stop that still writes the best plan so far.
"$tandem" tune -m "$dir/skew.gguf" --portrait "$dir/portrait.json" --stats "$dir/skew.stats.json" --time 5m -p 64 -n 32 \
  -r 3 --measure 4 --gpu-budget $budget --out "$dir/stopped.yaml" >"$dir/stop.txt" 2>"$dir/stop.err" &
pid=$!
for _ in $(seq 1 600); do
  grep -q "measuring 2/" "$dir/stop.err" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
running=0
kill -0 $pid 2>/dev/null && running=1
kill -INT $pid 2>/dev/null || true
wait $pid || { cat "$dir/stop.err"; exit 1; }
if [ $running = 1 ]; then grep -q "stopped (Ctrl-C)" "$dir/stop.err" || { cat "$dir/stop.err"; exit 1; }; fi
grep -q "^rules:" "$dir/stopped.yaml"
grep -q "^# Plan: " "$dir/stopped.yaml"
