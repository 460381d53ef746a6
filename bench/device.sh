#!/bin/bash
# The one driver for device-machine runs (a bare machine with a GPU and many cores; see
# bench/README.md for what each suite measured).
#   here:   bench/device.sh pack BUILD [DIR]      programs of BUILD + their libraries into DIR
#                                                  (default .device, ignored by git); LLAMA_BENCH=
#                                                  path adds a llama-bench binary, BEFORE=path a
#                                                  baseline tandem (tandem-before)
#   device: bench/device.sh run SUITE... [DIR]    with carry=["DIR"]; logs and JSON under $OUT
# Suites (in the order given; each writes $OUT/SUITE.log):
#   checks        expert, GPU and generated-model tests on this machine
#   experts       tandem bench experts vs llama.cpp's CPU kernels (ggml_mul_mat_id), 3 rounds
#   prefill-paths the expert engine's prefill paths (rows, repacked, sgemm) at 1..512 tokens
#   amx           AMX tiles vs the avx512 path per type, and the AMX crossover
#   gpu-kernels   bench_gpu_kernels: matvec, prefill GEMM, MLA
#   decode        bench decode on generated V2-Lite and 4-layer V3 models (and tandem-before)
#   models        bench run (pp/tg) on generated models, CPU only and hybrid, alternating with
#                 llama-bench when packed; peak RSS and load time of each
#   llama-cuda    builds llama-bench with CUDA on the device (LLAMA_SRC)
#   placements    tandem's plans beside llama.cpp's offload modes
#   before-after  tandem-before vs tandem: automatic plan and --gpu 0, RSS and wall
#   cpu           --cpu-only vs llama.cpp with the GPU hidden
#   iquants       IQ2_XXS / IQ1_S experts on the CPU vs llama -ot exps=CPU
#   chat-rate     chat's printed rate beside bench run's
#   load          load wall and peak RSS of each placement (pp16 tg4), llama-bench beside
#   profile       per-kernel GPU time of a prefill and a decode step (logits --profile)
#   tuning        tune on a skewed V3 slice (PROMPTS=file), tuned vs automatic vs even spread
#   parallel      V2-Lite, N = 1 2 4 8 sequences decoded together (bench run --parallel):
#                 automatic plan and --gpu 0, alternating, ROUNDS rounds (PARALLEL_PROMPT 128)
# Environment: THREADS (default nproc), ROUNDS (3), CONTEXTS ("512 4096 16384"), MODEL_DIR,
# MODELS ("v2lite v3x6"), PROMPT (512) and GEN (64) for the models suite.
set -uo pipefail

pack() {
  local build=${1:?build dir} dir=${2:-.device}
  rm -rf "$dir"
  bench/pack_binaries.sh "$build" "$dir" tools/tandem tests/unit/experts/experts_kernels_test \
    tests/unit/experts/experts_engine_test tests/unit/experts/experts_repacked_test tests/unit/experts/experts_amx_test \
    tests/unit/gpu/test_gpu tests/unit/gpu/test_gpu_matmul_tiled tests/integration/generated_models_test \
    bench/experts/bench_moe_engine bench/gpu/bench_gpu_kernels bench/peer/ggml_moe_peer
  local src
  src=$(bench/peer/fetch_llama_cpp.sh /tmp/tandem-llama-cpp)
  mkdir -p "$dir/llama-cpp"
  for f in libggml-base.so libggml-cpu-sapphirerapids.so libggml-cpu-icelake.so libggml-cpu-skylakex.so \
           libggml-cpu-zen4.so libggml-cpu-haswell.so; do
    [ -f "$src/$f" ] && cp "$src/$f" "$dir/llama-cpp/"
  done
  if [ -n "${LLAMA_BENCH:-}" ]; then objcopy --strip-debug "$LLAMA_BENCH" "$dir/bin/llama-bench"; fi
  if [ -n "${BEFORE:-}" ]; then objcopy --strip-debug "$BEFORE" "$dir/bin/tandem-before"; fi
  du -sh "$dir"
}

# ---- suites (run on the device) ----
say() { echo "== $*" | tee -a "$log"; }
run_logged() { "$@" 2>&1 | tee -a "$log"; }

suite_checks() {
  say "machine"
  { lscpu | grep -E 'Model name|^CPU\(s\)|NUMA node\(s\)|L3'; nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1; } |
    tee -a "$log"
  for t in experts_kernels_test experts_engine_test experts_repacked_test experts_amx_test; do
    say "$t"; timeout 300 "$bin/$t" --gtest_brief=1 2>&1 | tail -3 | tee -a "$log"
  done
  say "test_gpu"; timeout 200 "$bin/test_gpu" --gtest_brief=1 2>&1 | grep -E "FAILED|PASSED|tests from" | tee -a "$log"
  say "generated models"
  timeout 200 "$bin/generated_models_test" --gtest_brief=1 2>&1 | grep -E "FAILED|PASSED|worst" | tee -a "$log"
}

suite_experts() {
  local shape=(--type Q4_K --hidden 7168 --ffn 2048 --experts 8 --k 8 --layers 4)
  run_logged "$bin/tandem" bench numa --mb 1024
  for i in $(seq 1 "$rounds"); do
    say "round $i: tandem, $threads threads"
    run_logged "$bin/bench_moe_engine" "${shape[@]}" --threads-per-node "$threads" --bw-mb 1024 --seconds 0.5 \
      --tokens 1,4,64,512
    say "round $i: llama.cpp CPU kernels"
    "$bin/ggml_moe_peer" --lib-dir "$dir/llama-cpp" "${shape[@]}" --tokens 1,4,64,512 --threads "$threads" \
      --buffer plain 2>>"$log" | tee -a "$log" > "$out/peer_$i.json"
  done
}

suite_prefill_paths() {
  local shape=(--type Q4_K --hidden 7168 --ffn 2048 --experts 8 --k 8 --layers 4)
  for path in rows blas repacked; do
    say "prefill path $path"
    TANDEM_CPU_ISA=avx512 TANDEM_PREFILL_PATH=$path run_logged "$bin/bench_moe_engine" "${shape[@]}" \
      --threads-per-node "$threads" --bw-mb 0 --seconds 0.3 --tokens 1,4,16,32,64,256,512
  done
}

suite_amx() {
  bench_experts() {  # isa type tokens [env...]
    local isa=$1 type=$2 tokens=$3; shift 3
    say "$isa $type tokens $tokens $*"
    env TANDEM_CPU_ISA="$isa" "$@" "$bin/tandem" bench experts --type "$type" --hidden 7168 --ffn 2048 --experts 8 \
      --k 8 --layers 2 --threads-per-node "$threads" --bw-mb 256 --seconds 1 --tokens "$tokens" 2>&1 | tail -5 |
      tee -a "$log"
  }
  for type in Q4_K Q6_K Q8_0 BF16; do
    bench_experts amx "$type" 16,64,512
    bench_experts avx512 "$type" 16,64,512
  done
  say "crossover (Q4_K)"
  bench_experts amx Q4_K 1,4,8,16,32 TANDEM_AMX_MIN_TOKENS=1
}

suite_gpu_kernels() {
  for mode in "" --prefill --mla; do
    say "bench_gpu_kernels $mode"
    timeout 150 "$bin/bench_gpu_kernels" 0 $mode 2>&1 | grep -v '^  ' | tee -a "$log"
  done
}

make_models() {  # the MODELS named v2lite / v3x6, generated once per call, reused by the suites
  local m
  for m in ${MODELS:-v2lite v3x6}; do
    [ -f "$models/$m.gguf" ] && continue
    case $m in
      v2lite) "$bin/tandem" generate --preset v2-lite --type q4_K --out "$models/v2lite.gguf" >>"$log" 2>&1 ;;
      v3x6) "$bin/tandem" generate --preset v3 --layers 6 --type q4_K --out "$models/v3x6.gguf" >>"$log" 2>&1 ;;
      *) say "no model $m.gguf" ;;
    esac
  done
  ls -la "$models" | tee -a "$log"
}

suite_decode() {
  make_models
  for m in v2lite v3x6; do
    for t in tandem-before tandem; do
      [ -x "$bin/$t" ] || continue
      say "$t bench decode $m"
      timeout 120 "$bin/$t" bench decode --model "$models/$m.gguf" --context $contexts --steps 10 2>&1 |
        grep -v '^  ' | tee -a "$log"
    done
  done
}

# Peak RSS (KiB) and wall seconds of one command, appended to the log.
measured() {
  /usr/bin/time -f "peak RSS %M KiB, wall %e s" timeout "${LIMIT:-150}" "$@" 2>&1 | grep -vE '^tandem: experts:' | tee -a "$log"
}

suite_models() {
  make_models
  for m in ${MODELS:-v2lite v3x6}; do
    for i in $(seq 1 "$rounds"); do
      for mode in "--cpu-only" "--gpu 0"; do
        say "round $i $m tandem bench run $mode"
        measured "$bin/tandem" bench run -m "$models/$m.gguf" $mode -t "$threads" -p "$prompt" -n "$gen" -r 1 --json
        [ -x "$bin/llama-bench" ] || continue
        local ngl=0
        [ "$mode" = "--gpu 0" ] && ngl=99
        say "round $i $m llama-bench -ngl $ngl"
        measured "$bin/llama-bench" -m "$models/$m.gguf" -t "$threads" -p "$prompt" -n "$gen" -r 1 -ngl "$ngl" -o json
      done
    done
  done
}

# llama.cpp's llama-bench with CUDA, built on the device from the source node-llama-cpp 3.22.1
# ships (LLAMA_SRC=DIR/llama-src.tar.xz, its folders CMakeLists.txt cmake ggml src include common
# tools vendor app); kept in .devbuild between calls of one warm machine. ~260 s on 16 cores.
suite_llama_cuda() {
  [ -x "$bin/llama-bench" ] && { say "llama-bench already here"; return; }
  # A binary an earlier call sent back (xz, in pieces of 15 MiB) and this call carries.
  local pieces=${LLAMA_PIECES:-$dir}
  if ls "$pieces"/llama-bench.xz.part* >/dev/null 2>&1; then
    cat "$pieces"/llama-bench.xz.part* | xz -d >"$bin/llama-bench" && chmod +x "$bin/llama-bench" &&
      { say "llama-bench from the carried pieces"; return; }
  fi
  local src=${LLAMA_SRC:-$dir/llama-src.tar.xz} b=$PWD/.devbuild/llama
  if [ ! -x "$b/build/bin/llama-bench" ]; then
    mkdir -p "$b" && tar -xJf "$src" -C "$b" || { say "no llama.cpp source at $src"; return; }
    say "building llama-bench (CUDA, sm_90, static)"
    (cd "$b" && cmake -S . -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DBUILD_SHARED_LIBS=OFF \
      -DGGML_NATIVE=OFF -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AMX_TILE=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
      -DCMAKE_BUILD_TYPE=Release >"$b/cmake.log" 2>&1 &&
      cmake --build build -j "$(nproc)" --target llama-bench >"$b/build.log" 2>&1) ||
      { say "llama-bench build failed"; tail -20 "$b/cmake.log" "$b/build.log" | tee -a "$log"; return; }
  fi
  cp "$b/build/bin/llama-bench" "$bin/llama-bench"
  say "llama-bench built"
  # Sent back for the next call to carry (SEND_LLAMA=1): a cold machine would build it again.
  if [ -n "${SEND_LLAMA:-}" ]; then
    strip "$bin/llama-bench" -o "$b/llama-bench.stripped" && xz -T0 -6 -c "$b/llama-bench.stripped" >"$b/llama-bench.xz" &&
      split -b 15M "$b/llama-bench.xz" "$out/llama-bench.xz.part" && ls -la "$out" | tee -a "$log"
  fi
}

# Placements side by side on each model, alternating, ROUNDS rounds: tandem's automatic plan (no
# flag), --gpu 0 (experts on the CPU), --cpu-only; llama.cpp full offload, experts on the CPU
# (-ot exps=CPU) and -ngl 0. One JSON line per run in the log.
suite_placements() {
  make_models
  for m in ${MODELS:-v2lite v3x6}; do
    for i in $(seq 1 "$rounds"); do
      for mode in auto "--gpu 0" "--cpu-only"; do
        say "round $i $m tandem $mode"
        local flags=$mode
        [ "$mode" = auto ] && flags=
        measured "$bin/tandem" bench run -m "$models/$m.gguf" $flags -t "$threads" -p "$prompt" -n "$gen" -r 1 --json
      done
      [ -x "$bin/llama-bench" ] || continue
      for lf in "-ngl 99" "-ngl 99 -ot exps=CPU" "-ngl 0"; do
        say "round $i $m llama-bench $lf"
        measured "$bin/llama-bench" -m "$models/$m.gguf" -t "$threads" -p "$prompt" -n "$gen" -r 1 $lf -o jsonl
      done
    done
  done
}

# Before and after on the same files (BEFORE= packed as tandem-before): the automatic plan and
# --gpu 0, ROUNDS rounds, alternating; peak RSS and wall of each run (issue 8: no slower than the
# hard-wired hybrid, memory and load time).
suite_before_after() {
  make_models
  for m in ${MODELS:-v2lite v3x6}; do
    for i in $(seq 1 "$rounds"); do
      for mode in auto "--gpu 0"; do
        local flags=$mode
        [ "$mode" = auto ] && flags=
        for t in tandem-before tandem; do
          [ -x "$bin/$t" ] || continue
          say "round $i $m $t $mode"
          measured "$bin/$t" bench run -m "$models/$m.gguf" $flags -t "$threads" -p "$prompt" -n "$gen" -r 1 --json
        done
      done
    done
  done
}

# CPU only against llama.cpp's CPU backend (the GPU hidden from it: with -ngl 0 a CUDA build
# still sends big prompt matmuls to the GPU), alternating, ROUNDS rounds.
suite_cpu() {
  make_models
  for m in ${MODELS:-v2lite v3x6}; do
    for i in $(seq 1 "$rounds"); do
      say "round $i $m tandem --cpu-only"
      measured "$bin/tandem" bench run -m "$models/$m.gguf" --cpu-only -t "$threads" -p "$prompt" -n "$gen" -r 1 --json
      [ -x "$bin/llama-bench" ] || continue
      say "round $i $m llama-bench CPU (CUDA_VISIBLE_DEVICES empty)"
      CUDA_VISIBLE_DEVICES= measured "$bin/llama-bench" -m "$models/$m.gguf" -t "$threads" -p "$prompt" -n "$gen" -r 1 \
        -ngl 0 -o jsonl
    done
  done
}

# i-quant experts (IQ_TYPES, default "iq2_xxs iq1_s"; the rest of the model Q4_K) with the experts
# on the CPU: tandem --gpu 0 against llama -ngl 99 -ot exps=CPU, alternating, ROUNDS rounds.
suite_iquants() {
  local m t f preset
  run_logged "$bin/tandem" bench numa --mb 1024
  for m in ${MODELS:-v2lite v3x6}; do
    for t in ${IQ_TYPES:-iq2_xxs iq1_s}; do
      f=$models/$m-$t.gguf
      if [ ! -f "$f" ]; then
        preset=(--preset v2-lite)
        [ "$m" = v3x6 ] && preset=(--preset v3 --layers 6)
        "$bin/tandem" generate "${preset[@]}" --type q4_K --expert-type "$t" --expert-down-type "$t" --out "$f" \
          >>"$log" 2>&1 || { say "generate $m $t failed"; tail -3 "$log"; continue; }
      fi
      ls -la "$f" | tee -a "$log"
      for i in $(seq 1 "$rounds"); do
        say "round $i $m $t tandem --gpu 0"
        measured "$bin/tandem" bench run -m "$f" --gpu 0 -t "$threads" -p "$prompt" -n "$gen" -r 1 --json
        [ -x "$bin/llama-bench" ] || continue
        say "round $i $m $t llama-bench -ngl 99 -ot exps=CPU"
        measured "$bin/llama-bench" -m "$f" -t "$threads" -p "$prompt" -n "$gen" -r 1 -ngl 99 -ot exps=CPU -o jsonl
      done
    done
  done
}

# The rate a user sees in `chat` beside bench run's tg on the same file and plan.
suite_chat_rate() {
  make_models
  for m in ${MODELS:-v2lite v3x6}; do
    say "$m chat --gpu 0 (64 tokens)"
    timeout 120 "$bin/tandem" chat -m "$models/$m.gguf" --gpu 0 -t "$threads" --temp 0 -n 64 --verbose \
      -p "Write a long story about a lighthouse keeper." 2>&1 | tail -4 | tee -a "$log"
    say "$m bench run --gpu 0 tg64"
    timeout 120 "$bin/tandem" bench run -m "$models/$m.gguf" --gpu 0 -t "$threads" -p 16 -n 64 -r 1 2>&1 | tail -3 | tee -a "$log"
  done
}

# Placement tuning acceptance (issue 12): a V3 slice with skewed routers, the machine's portrait,
# routing statistics over PROMPTS (a JSON list of strings), then `tune` with a GPU budget that
# holds part of the experts; tuned vs automatic vs an even spread, predictions beside measurements.
suite_tuning() {
  local f=$models/v3x6-skew.gguf
  [ -f "$f" ] || "$bin/tandem" generate --preset v3 --layers 6 --type q4_K --route-skew "${SKEW:-16}" --out "$f" \
    >>"$log" 2>&1
  run_logged "$bin/tandem" bench numa -o "$out/portrait.json" --svg "$out/portrait.svg"
  run_logged timeout 120 "$bin/tandem" profile-experts -m "$f" --prompts "${PROMPTS:?a prompts JSON}" --decode 16 \
    --out "$models/stats.json" --hot 16
  run_logged timeout "${TUNE_LIMIT:-330}" "$bin/tandem" tune -m "$f" --portrait "$out/portrait.json" \
    --stats "$models/stats.json" --gpu-budget "${GPU_BUDGET:-10GB}" --time "${TUNE_TIME:-4m}" -p 512 -n 64 \
    --measure 3 --out "$out/tuned.yaml" --report "$out/tune-report.json"
}

# Per-kernel GPU time of one prefill step and one decode step (logits --profile), everything on the
# GPU (rules/gpu-experts-fill.yaml) and --gpu 0, on the MODELS (issue 9: where the GPU time goes).
suite_profile() {
  make_models
  local words="" i
  for i in $(seq 1 $((prompt / 4))); do words="$words the quick brown fox jumps over"; done
  printf '["%s"]\n' "$words" >"$models/profile-prompts.json"
  for m in ${MODELS:-v2lite v3x6}; do
    for mode in "--rules rules/gpu-experts-fill.yaml" "--gpu 0"; do
      for g in 0 2; do
        say "$m $mode greedy $g"
        timeout 300 "$bin/tandem" logits --model "$models/$m.gguf" $mode --prompts "$models/profile-prompts.json" \
          --out "$out/profile-$m" --greedy "$g" --top 1 --profile 2>&1 | grep -v '^load' | tail -60 | tee -a "$log"
      done
    done
  done
}

# Load time and peak RSS: a minimal bench (pp16, tg4) of each placement, so the wall is mostly
# loading; llama-bench the same when packed (issue 8: RSS and load time targets).
suite_load() {
  make_models
  for m in ${MODELS:-v2lite v3x6}; do
    for i in $(seq 1 "$rounds"); do
      for mode in "--gpu 0" "--cpu-only" auto; do
        local flags=$mode
        [ "$mode" = auto ] && flags=
        say "round $i $m tandem load $mode"
        measured "$bin/tandem" bench run -m "$models/$m.gguf" $flags -t "$threads" -p 16 -n 4 -r 1 --json
      done
      [ -x "$bin/llama-bench" ] || continue
      for lf in "-ngl 99 -ot exps=CPU" "-ngl 99"; do
        say "round $i $m llama-bench load $lf"
        measured "$bin/llama-bench" -m "$models/$m.gguf" -t "$threads" -p 16 -n 4 -r 1 $lf -o jsonl
      done
    done
  done
}

# Continuous batching (issue 10): N sequences through one BatchedLm, each prefilled with its own
# prompt, then GEN decode passes of N tokens; aggregate and per-sequence t/s ("tg64 x4").
suite_parallel() {
  MODELS=v2lite make_models
  for i in $(seq 1 "$rounds"); do
    for mode in auto "--gpu 0"; do
      local flags=$mode
      [ "$mode" = auto ] && flags=
      say "round $i v2lite tandem bench run --parallel 1,2,4,8 $mode"
      measured "$bin/tandem" bench run -m "$models/v2lite.gguf" $flags -t "$threads" -p "${PARALLEL_PROMPT:-128}" \
        -n "$gen" -r 1 --parallel 1,2,4,8 --json
    done
  done
}

case ${1:?pack or run} in
  pack) shift; pack "$@" ;;
  run)
    shift
    suites=()
    dir=.device
    for a in "$@"; do
      if [ -d "$a" ]; then dir=$a; else suites+=("$a"); fi
    done
    out=${OUT:-device-out}
    mkdir -p "$out"
    export LD_LIBRARY_PATH=$PWD/$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    bin=$PWD/$dir/bin
    threads=${THREADS:-$(nproc)}
    rounds=${ROUNDS:-3}
    contexts=${CONTEXTS:-"512 4096 16384"}
    models=${MODEL_DIR:-/tmp/tandem-models}
    prompt=${PROMPT:-512}
    gen=${GEN:-64}
    mkdir -p "$models"
    for s in "${suites[@]}"; do
      log=$out/$s.log
      fn=suite_${s//-/_}
      if declare -F "$fn" >/dev/null; then "$fn"; else echo "unknown suite $s" | tee -a "$log"; fi
    done
    ;;
  *) echo "usage: bench/device.sh pack BUILD [DIR] | run SUITE... [DIR]" >&2; exit 2 ;;
esac
