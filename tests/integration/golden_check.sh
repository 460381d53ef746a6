#!/usr/bin/env bash
# golden_check.sh TANDEM SHARED_DIR MODEL [tandem logits flags...]
# Runs `tandem logits` on ../shared/golden/MODEL.gguf (or ../shared/DIR/NAME.gguf for a MODEL
# of the form DIR/NAME, e.g. golden-iq/tiny-v2c-iq4xs) with golden/'s prompts and checks it with
# golden/compare.py against the model's NAME.reference.json. Exits 77 (skipped) when the
# reference data is absent.
set -euo pipefail
tandem=$1 shared=$2 model=$3
shift 3
golden="$shared/golden"
case "$model" in
  */*) models="$shared/$(dirname "$model")" model=$(basename "$model") ;;
  *) models="$golden" ;;
esac
if [ ! -f "$models/$model.gguf" ] || [ ! -f "$golden/compare.py" ]; then
  echo "skipped: $models/$model.gguf not present"
  exit 77
fi
# GPU runs need a Vulkan device (lavapipe counts); `tandem gpus` fails without one.
needs_gpu=0
case " $* " in
  *" --gpu "*) needs_gpu=1 ;;
esac
# A rules file that places anything on a GPU needs one too.
prev=""
for a in "$@"; do
  if [ "$prev" = "--rules" ] && grep -q "gpu" "$a"; then needs_gpu=1; fi
  prev=$a
done
if [ "$needs_gpu" = 1 ] && ! "$tandem" gpus >/dev/null 2>&1; then
  echo "skipped: no Vulkan device"
  exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if ! "$tandem" logits --model "$models/$model.gguf" --prompts "$golden/prompts.json" --top 20 --greedy 16 \
  --out "$out/$model" "$@" 2>"$out/stderr"; then
  cat "$out/stderr"
  if grep -q "this CPU does not support it" "$out/stderr"; then
    echo "skipped: TANDEM_CPU_ISA=${TANDEM_CPU_ISA:-} is not available on this CPU"
    exit 77
  fi
  exit 1
fi
cat "$out/stderr"
python3 "$golden/compare.py" "$models/$model.reference.json" "$out/$model.json"
