#!/bin/bash
# A short device call for prefill: the repacked-layout tests, then tandem's expert engine with
# and without the repacked Q4_K layout (TANDEM_PREFILL_REPACK) and llama.cpp's CPU kernels on
# the same shapes, all in one run so that ratios compare like with like. Needs .device/ from
# bench/device_pack.sh (carry=[".device"]); results in $OUT.
#   bench/peer/device_prefill.sh [threads]
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out"
threads=${1:-$(nproc)}
tokens=${TOKENS:-64,512}
layers=${LAYERS:-4}
export LD_LIBRARY_PATH=$PWD/.device/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
bin=$PWD/.device/bin
log=$out/device_prefill.log
say() { echo "== $*" | tee -a "$log"; }
lscpu | grep -E 'Model name|^CPU\(s\)' | tee -a "$log"
say "checks"
"$bin/experts_repacked_test" --gtest_brief=1 2>&1 | tail -3 | tee -a "$log"
shape=(--type Q4_K --hidden 7168 --ffn 2048 --experts 8 --k 8 --layers "$layers")
for round in 1 2; do
  for repack in 0 1; do
    say "round $round: tandem bench experts, ${threads} threads, TANDEM_PREFILL_REPACK=$repack"
    TANDEM_PREFILL_REPACK=$repack "$bin/tandem" bench experts "${shape[@]}" --threads-per-node "$threads" \
      --bw-mb 256 --tokens "$tokens" 2>&1 | tail -3 | tee -a "$log"
  done
  say "round $round: peer, plain buffer"
  "$bin/ggml_moe_peer" --lib-dir .device/llama-cpp "${shape[@]}" --tokens "$tokens" --threads "$threads" \
    --buffer plain 2>>"$log" | tee -a "$log"
done
say "done"
