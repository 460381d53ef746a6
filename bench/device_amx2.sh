#!/bin/bash
# Second AMX device call: the AMX tests, then the default amx path (BF16/Q8_0 on tiles, Q4_K on
# the vpdpbusd layout) vs avx512, and Q4_K on the int8 tiles (TANDEM_AMX_KQUANTS=1) once more.
set -uo pipefail
out=${OUT:-device-out}; mkdir -p "$out"; threads=${1:-16}; dev=$PWD/.device-amx
export LD_LIBRARY_PATH=$dev/lib; log=$out/amx2.log
say() { echo "== $*" | tee -a "$log"; }
say "amx tests"
"$dev/bin/experts_amx_test" 2>&1 | grep -E '^\[  (PASSED|FAILED|SKIPPED) |Failure|actual' | head -20 | tee -a "$log"
bench() {
  local isa=$1 type=$2 tokens=$3; shift 3
  say "$isa $type tokens $tokens $*"
  env TANDEM_CPU_ISA=$isa "$@" "$dev/bin/tandem" bench experts --type "$type" --hidden 7168 --ffn 2048 --experts 8 --k 8 \
    --layers 2 --threads-per-node "$threads" --bw-mb 256 --seconds 1 --tokens "$tokens" 2>&1 | tail -"${4:-5}" | tee -a "$log"
}
bench amx Q8_0 16,64,512
bench avx512 Q8_0 16,64,512
bench amx Q4_K 1,4,64,512
bench amx Q4_K 64,512 TANDEM_AMX_KQUANTS=1
bench avx512 Q4_K 64,512
bench amx BF16 1,16
bench avx512 BF16 1,16
say done
