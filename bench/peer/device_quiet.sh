#!/bin/bash
# One device call: the prefill-path tests, then a repeated (min/median) comparison of tandem's
# expert engine (bench_moe_engine: `tandem bench experts` without the GPU runtime; its bandwidth
# probe is the local-node probe of `tandem bench numa`) with llama.cpp's CPU kernels at tokens
# 1,4,64,512 (Q4_K 7168x2048 x 8 experts, k=8, 4 layers), then the prefill paths (row kernels,
# repacked tile, dequantize + sgemm) against each other. Needs DIR packed by bench/device_pack.sh BUILD DIR
# (carry=["DIR"]); logs and JSON in $OUT.
#   bench/peer/device_quiet.sh [threads] [DIR] [repeats]
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out"
threads=${1:-$(nproc)}
dev=${2:-.device}
repeats=${3:-3}
buffers=${BUFFERS:-plain extra}        # peer buffers per round
paths=${PATHS:-rows blas repacked}     # prefill paths timed at the end
export LD_LIBRARY_PATH=$PWD/$dev/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The vpdpbusd paths this script measures (an AMX-capable CPU would otherwise pick the amx ISA).
export TANDEM_CPU_ISA=${TANDEM_CPU_ISA:-avx512}
bin=$PWD/$dev/bin
log=$out/device_quiet.log
say() { echo "== $*" | tee -a "$log"; }
lscpu | grep -E 'Model name|^CPU\(s\)|L3' | tee -a "$log"
grep -E 'MemTotal|MemAvailable' /proc/meminfo | tee -a "$log"
say "checks"
for t in experts_repacked_test experts_engine_test experts_kernels_test; do
  [ -x "$bin/$t" ] && "$bin/$t" --gtest_brief=1 2>&1 | tail -2 | tee -a "$log"
done
shape=(--type Q4_K --hidden 7168 --ffn 2048 --experts 8 --k 8 --layers 4)
for i in $(seq 1 "$repeats"); do
  say "round $i: tandem (default options), ${threads} threads"
  "$bin/bench_moe_engine" "${shape[@]}" --threads-per-node "$threads" --bw-mb 1024 --seconds 0.5 \
    --tokens 1,4,64,512 2>&1 | tee -a "$log"
  for buffer in $buffers; do
    say "round $i: peer, $buffer buffer"
    "$bin/ggml_moe_peer" --lib-dir "$dev/llama-cpp" "${shape[@]}" --tokens 1,4,64,512 --threads "$threads" \
      --buffer $buffer 2>>"$log" | tee -a "$log" > "$out/peer_${buffer}_$i.json"
  done
done
for path in $paths; do
  say "prefill path $path"
  TANDEM_PREFILL_PATH=$path "$bin/bench_moe_engine" "${shape[@]}" --threads-per-node "$threads" --bw-mb 0 \
    --seconds 0.3 --tokens 1,4,16,32,64,256,512 2>&1 | tee -a "$log"
done
say "done"
