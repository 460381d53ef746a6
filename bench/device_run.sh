#!/bin/bash
# One call on the device machine: checks, then times the expert engine and llama.cpp's CPU
# kernels on the same shapes. Run from the repo root with DIR (default .device/) packed by
# bench/device_pack.sh (carry=["DIR"]); results go to $OUT (default ./device-out).
#   bench/device_run.sh [threads] [DIR]
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out"
threads=${1:-$(nproc)}
dev=${2:-.device}
tokens=${TOKENS:-1,4,64,512}   # override for a quick local try of the plumbing
# Forwards rotate over this many layers: 4 x 198 MB of Q4_K weights outgrow a 300 MB L3.
layers=${LAYERS:-4}
export LD_LIBRARY_PATH=$PWD/$dev/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
bin=$PWD/$dev/bin
log=$out/device_run.log
say() { echo "== $*" | tee -a "$log"; }

say "machine"
{ lscpu | grep -E 'Model name|^CPU\(s\)|Thread|Socket|NUMA node|L2|L3|Flags' | sed 's/\(Flags:\).*\(avx512[a-z_0-9]* \).*/\1 (see lscpu.txt)/'; } | tee -a "$log"
lscpu > "$out/lscpu.txt"
grep -o 'amx[a-z_0-9]*\|avx512_vnni\|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ' | tee -a "$log"; echo | tee -a "$log"

say "checks: experts unit tests"
"$bin/experts_kernels_test" --gtest_brief=1 2>&1 | tail -3 | tee -a "$log"
"$bin/experts_engine_test" --gtest_brief=1 2>&1 | tail -3 | tee -a "$log"

say "checks: tiny generated model, logits on the CPU path, avx512 vs scalar experts"
tmp=$(mktemp -d)
"$bin/tandem" generate --out "$tmp/tiny.gguf" --type q4_K --layers 3 >/dev/null 2>&1 || say "generate failed"
echo '["The quick brown fox", "1 2 3 4 5"]' > "$tmp/prompts.json"
for isa in scalar avx512; do
  TANDEM_CPU_ISA=$isa "$bin/tandem" logits --cpu-only --model "$tmp/tiny.gguf" --prompts "$tmp/prompts.json" \
    --out "$tmp/$isa" --greedy 8 >/dev/null 2>&1 || say "logits $isa failed"
done
g_scalar=$(grep -o '"greedy[^]]*]' "$tmp/scalar.json" 2>/dev/null)
g_avx512=$(grep -o '"greedy[^]]*]' "$tmp/avx512.json" 2>/dev/null)
if [ -z "$g_scalar" ]; then
  say "sanity: FAILED, no greedy continuation written"
elif [ "$g_scalar" = "$g_avx512" ]; then
  say "sanity: greedy continuations of scalar and avx512 experts agree: $(echo "$g_scalar" | head -c 120)"
else
  say "sanity: greedy continuations differ (see files)"; cp "$tmp"/*.json "$out/" 2>/dev/null
fi

say "bandwidth"
"$bin/tandem" bench numa --mb 1024 --json > "$out/numa.json" 2>&1; tail -c 600 "$out/numa.json" | tee -a "$log"; echo

shape=(--type Q4_K --hidden 7168 --ffn 2048 --experts 8 --k 8 --layers "$layers")
common=(--threads-per-node "$threads" --bw-mb 1024)
say "tandem bench experts, ${threads} threads, weights read in place (as from the GGUF mmap)"
"$bin/tandem" bench experts "${shape[@]}" "${common[@]}" --tokens "$tokens" --json > "$out/tandem_experts.json" 2>&1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("bw %.1f GB/s" % d["read_gb_per_s"]); [print(r) for r in d["results"]]' "$out/tandem_experts.json" 2>&1 | tee -a "$log"
say "tandem bench experts, ${threads} threads, --copy-weights (engine-owned huge pages)"
"$bin/tandem" bench experts "${shape[@]}" "${common[@]}" --tokens "$tokens" --copy-weights 2>&1 | tee -a "$log"

say "peer: llama.cpp CPU kernels (ggml_mul_mat_id), ${threads} threads"
for buffer in plain extra; do
  "$bin/ggml_moe_peer" --lib-dir "$dev/llama-cpp" "${shape[@]}" --tokens "$tokens" --threads "$threads" \
    --buffer $buffer > "$out/peer_$buffer.json" 2>>"$log"
  cat "$out/peer_$buffer.json" | tee -a "$log"
done
say "done"
