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

status=0
for bin in "${targets[@]}"; do
  name=$(basename "$bin")
  short=${name#fuzz_}
  work=$(mktemp -d)
  artifacts="$build_dir/fuzz-artifacts/$name"
  mkdir -p "$artifacts"
  seeds=()
  [[ -d "$here/corpus/$short" ]] && seeds+=("$here/corpus/$short")
  log="$build_dir/fuzz-artifacts/$name.log"
  echo "== $name: ${seconds}s"
  if "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
       -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "${seeds[@]}" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
    echo "   corpus: $(ls "$work" | wc -l) inputs; ok"
  else
    echo "   FAILED: see $log and $artifacts/" >&2
    tail -n 40 "$log" >&2
    status=1
  fi
  rm -rf "$work"
done
exit $status
