#!/usr/bin/env bash
# Runs every fuzz target of a TANDEM_FUZZ build for a bounded time each, starting from the
# seeds in tests/fuzz/corpus/<name>/ (copied: the checked-in seeds are never modified).
# Usage: tests/fuzz/run.sh FUZZ_BUILD_DIR SECONDS
# Exit status: 0 when no target found anything; 1 otherwise (crash inputs are left in
# FUZZ_BUILD_DIR/fuzz-artifacts/<name>/).
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 FUZZ_BUILD_DIR SECONDS" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)

mapfile -t targets < <(find "$build_dir/tests/fuzz" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x | sort)
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "no fuzz_* executables under $build_dir/tests/fuzz (configure with -DTANDEM_FUZZ=ON and build)" >&2
  exit 2
fi

# One target per core at a time (each libFuzzer run is single-threaded); a target's report is
# printed when it ends, so reports of concurrent targets never interleave.
jobs=${TANDEM_FUZZ_JOBS:-$(nproc)}
run_one() {
  local bin=$1 name short work artifacts log seeds=()
  name=$(basename "$bin")
  short=${name#fuzz_}
  work=$(mktemp -d)
  artifacts="$build_dir/fuzz-artifacts/$name"
  mkdir -p "$artifacts"
  [[ -d "$here/corpus/$short" ]] && seeds+=("$here/corpus/$short")
  log="$build_dir/fuzz-artifacts/$name.log"
  if "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
       -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "${seeds[@]}" >"$log" 2>&1; then
    { echo "== $name: ${seconds}s"
      grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
      echo "   corpus: $(ls "$work" | wc -l) inputs; ok"; } >"$log.summary"
    rm -rf "$work"
    return 0
  fi
  { echo "== $name: ${seconds}s"
    echo "   FAILED: see $log and $artifacts/"
    tail -n 40 "$log"; } >"$log.summary"
  rm -rf "$work"
  return 1
}

status=0
pids=() names=()
finish_one() {  # waits for the oldest running target and prints its report
  local pid=${pids[0]} name=${names[0]}
  pids=("${pids[@]:1}") names=("${names[@]:1}")
  if ! wait "$pid"; then status=1; cat "$build_dir/fuzz-artifacts/$name.log.summary" >&2
  else cat "$build_dir/fuzz-artifacts/$name.log.summary"; fi
}
for bin in "${targets[@]}"; do
  while [[ ${#pids[@]} -ge $jobs ]]; do finish_one; done
  run_one "$bin" &
  pids+=($!) names+=("$(basename "$bin")")
done
while [[ ${#pids[@]} -gt 0 ]]; do finish_one; done
exit $status
