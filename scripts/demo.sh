#!/usr/bin/env bash
# edgekit's main job, end to end, on the bundled sample (examples/apple-banana):
#   1. train the small Inception-style net on it, split by original photo;
#   2. convert it to a full-integer int8 bundle, verified against the float model on held-out
#      images (and compiled for the Edge TPU when edgetpu_compiler is installed);
#   3. inspect the bundle's int8 model (ops, params, MACs, predicted Edge TPU mapping);
#   4. classify photos with it (Edge TPU if attached, else the CPU interpreter);
#   5. benchmark it.
# Sets up .venv first. Output goes to out/demo/ (OUT=... to change).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/_setup.sh
. scripts/_setup.sh
case "${1:-}" in
  -h|--help) script_help scripts/demo.sh; exit 0 ;;
  "") ;;
  *) echo "unknown option: $1 (scripts/demo.sh takes none; OUT=dir to change the output)" >&2; exit 2 ;;
esac
setup_venv "host,device"

OUT="${OUT:-out/demo}"
DATA=examples/apple-banana
GROUPS_RE='(?:apple|bana)[-_](\d+)'
ek=.venv/bin/edgekit
mkdir -p "$OUT"

echo "== 1. train inception_lite on $DATA (split by original photo)"
$ek train "$DATA" --model inception_lite --group-pattern "$GROUPS_RE" -o "$OUT/model.h5" --force

echo "== 2. convert to int8, verify on the photos training held out ($OUT/model_split.json), compile"
$ek convert "$OUT/model.h5" --calib "$DATA" --group-pattern "$GROUPS_RE" \
  --labels "$OUT/labels.txt" --min-agreement 0.95 -o "$OUT/bundle" --force

echo "== 3. inspect"
$ek inspect "$OUT"/bundle/model_int8.tflite   # <stem>_int8.tflite, from model.h5

echo "== 4. classify one held-out photo of each class (never trained on)"
mapfile -t held < <(.venv/bin/python -c '
import json, sys
held = sorted(json.load(open(sys.argv[1]))["held_out"])
for cls in ("apple", "banana"):
    print(next(h for h in held if h.startswith(cls + "/")))
' "$OUT/model_split.json")
$ek classify "$OUT/bundle" "${held[@]/#/$DATA/}" --top-k 2

echo "== 5. bench"
$ek bench "$OUT/bundle" --runs 200
echo "done: bundle in $OUT/bundle"
