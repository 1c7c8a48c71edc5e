#!/usr/bin/env bash
# edgekit's main job, end to end, on the bundled sample (examples/apple-banana):
#   1. train the small Inception-style net on it, split by original photo;
#   2. convert it to a full-integer int8 bundle, verified against the float model on held-out
#      images (and compiled for the Edge TPU when edgetpu_compiler is installed);
#   3. inspect the bundle's int8 model (ops, params, MACs, predicted Edge TPU mapping);
#   4. classify photos with it (Edge TPU if attached, else the CPU interpreter);
#   5. benchmark it;
#   6-9. compose a detection dataset from the same photos, train edgekit's detector on it,
#      convert it (int8 verified by mAP@0.5 on held-out scenes) and detect with annotated copies.
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

# Detection: the same photos pasted on procedural backgrounds (train and val scenes from
# different original photos), edgekit's anchor-free detector trained on them.
DET="$OUT/detector"
echo "== 6. compose a detection dataset from $DATA (held-out scenes use held-out photos)"
# (The settings of tests/detector/test_train_convert.py, which checks mAP@0.5 >= 0.7 with them.)
.venv/bin/python scripts/compose_detection_dataset.py -o "$OUT/scenes" --train 300 --val 60 \
  --size 192x144 --force

echo "== 7. train the detector (reports mAP@0.5 on the held-out scenes)"
$ek train --task detect "$OUT/scenes" --model detector --input-size 128 --epochs 20 \
  -o "$DET/detector.h5" --force

echo "== 8. convert the detector to int8 (mAP of float and int8 on the held-out scenes)"
$ek convert "$DET/detector.h5" --calib "$OUT/scenes" --min-map 0.6 -o "$DET/bundle" --force

echo "== 9. detect, with annotated copies"
$ek detect "$DET/bundle" "$OUT"/scenes/images/val/scene_0000[0-3].jpg --annotate "$DET/annotated"
echo "done: bundles in $OUT/bundle and $DET/bundle, annotated scenes in $DET/annotated"
