#!/bin/bash
# One device call for the AMX prefill path: the AMX tests (real tiles), the engine tests, then
# tandem bench experts with TANDEM_CPU_ISA=amx vs avx512 (its default prefill layout) on
# Q4_K, Q6_K, BF16, and the AMX crossover (TANDEM_AMX_MIN_TOKENS=1 at small token counts).
# Needs .device-amx/ (bench/device_pack_amx.sh); results in $OUT/amx.log.
#   bench/device_amx.sh [threads]
set -uo pipefail
out=${OUT:-device-out}
mkdir -p "$out"
threads=${1:-16}
dev=$PWD/.device-amx
export LD_LIBRARY_PATH=$dev/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
log=$out/amx.log
say() { echo "== $*" | tee -a "$log"; }
lscpu | grep -E 'Model name|^CPU\(s\)' | tee -a "$log"
grep -o -w 'amx_[a-z0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ' | tee -a "$log"; echo | tee -a "$log"
say "amx tests"
"$dev/bin/experts_amx_test" 2>&1 | grep -E '^\[  (PASSED|FAILED|SKIPPED) |Failure|Expected|Which is|error' | head -40 | tee -a "$log"
say "engine + kernel tests (avx512 params), TANDEM_CPU_ISA=amx"
TANDEM_CPU_ISA=amx "$dev/bin/experts_engine_test" --gtest_brief=1 2>&1 | tail -3 | tee -a "$log"
"$dev/bin/experts_kernels_test" --gtest_brief=1 2>&1 | tail -2 | tee -a "$log"
bench() {  # isa type tokens [env...]
  local isa=$1 type=$2 tokens=$3; shift 3
  say "$isa $type tokens $tokens $*"
  env TANDEM_CPU_ISA=$isa "$@" "$dev/bin/tandem" bench experts --type "$type" --hidden 7168 --ffn 2048 --experts 8 --k 8 \
    --layers "${LAYERS:-2}" --threads-per-node "$threads" --bw-mb 256 --seconds 1 --tokens "$tokens" 2>&1 | tail -4 | tee -a "$log"
}
for type in Q4_K Q6_K BF16; do
  bench amx $type 64,512
  bench avx512 $type 64,512 TANDEM_PREFILL_REPACK=1
done
say "crossover (Q4_K)"
bench amx Q4_K 1,4,8,16,32 TANDEM_AMX_MIN_TOKENS=1
bench avx512 Q4_K 1,4,8,16,32 TANDEM_PREFILL_REPACK=1
say "done"
