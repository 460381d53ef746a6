#!/usr/bin/env bash
# Builds tandem and runs every test: the release build, the same tests under
# AddressSanitizer + UndefinedBehaviorSanitizer, and each libFuzzer target for a bounded time.
# The golden logits checks run when ../shared is present (they skip otherwise).
# Usage: scripts/test.sh [--quick]   (--quick: release build and tests only)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
fuzz_seconds=${TANDEM_FUZZ_SECONDS:-30}

step() { printf '\n== %s (at %dm%02ds) ==\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }

# Line tables only (-g1) in every build here: full debug info doubles compile time on a 2-core
# CI machine and a failing test's backtrace needs no more.
step "release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" >/dev/null
cmake --build build -j "$jobs"
step "tests (release)"
ctest --test-dir build --output-on-failure -j "$jobs"

# Tests that take the CPU ISA from the host (whole generated models through load_model; the
# shard tests compare files, not kernels, and run once) run
# again with each narrower ISA the host supports forced, so a host with AMX also covers avx512
# and avx2 (the expert tests sweep every supported ISA themselves, the golden tests each one).
host_isa_tests='^(Shapes/)?GeneratedModel\.'
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
for isa in avx2 avx512; do
  case $isa in
    avx2) has avx2 fma f16c || continue ;;
    avx512) has avx512f avx512bw avx512vl avx512dq avx512_vnni || continue ;;
  esac
  step "tests (release, TANDEM_CPU_ISA=$isa)"
  TANDEM_CPU_ISA=$isa ctest --test-dir build --output-on-failure -j "$jobs" -R "$host_isa_tests"
done

if [ "${1:-}" = "--quick" ]; then exit 0; fi

step "sanitizer build (address,undefined)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTANDEM_SANITIZE=address,undefined \
  -DTANDEM_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS=-O1 -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DCMAKE_C_FLAGS_DEBUG=-g1 >/dev/null
cmake --build build-asan -j "$jobs"
step "tests (address,undefined)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" -LE slow_under_sanitizers

step "fuzz targets (${fuzz_seconds}s each)"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTANDEM_FUZZ=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DTANDEM_BUILD_TESTS=ON -DTANDEM_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzz_targets
tests/fuzz/run.sh build-fuzz "$fuzz_seconds"
printf "\\n== done in %dm%02ds ==\\n" $((SECONDS / 60)) $((SECONDS % 60))
