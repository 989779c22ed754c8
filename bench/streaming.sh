#!/usr/bin/env bash
# Streaming check: a folder of 20,000 JPEG images at 256x256 (15.7 GB once decoded as float32) trains through the
# batch pipeline with far less memory than that, and the training step does not wait on decoding.
#
#   bench/streaming.sh [IMAGES (default 20000)] [MODEL (default small-32)]
#
# Runs, on the same generated folder (under /tmp, kept for reruns; NAANI_STREAM_DIR overrides):
#   1. with the pipeline:    2 epochs, --workers 1 (the default on 2 cores) --cache auto (disk here: the 8-bit set exceeds 1 GiB)
#                            epoch 1 decodes every JPEG on a background thread; epoch 2 reads the disk cache
#   2. without the pipeline: 1 epoch, --workers 0 --cache none: each batch is decoded on the training thread
# and prints peak RSS (/usr/bin/time -v), images/s per epoch and the seconds training waited for data.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGES=${1:-20000}
MODEL=${2:-small-32}
ROOT=${NAANI_STREAM_DIR:-/tmp/naani-streaming}
DATA=$ROOT/images-$IMAGES
NAANI=src/Naani.Cli/bin/Release/net10.0/naani

dotnet build src/Naani.Cli -c Release -nologo -v q >/dev/null
if [ ! -d "$DATA" ]; then
  echo "Generating $IMAGES images of 256x256 in $DATA ..."
  "$NAANI" data synth "$DATA.part" --classes 2 --per-class $((IMAGES / 2)) --size 256 --format jpg
  mv "$DATA.part" "$DATA"
fi
echo "Folder: $(du -sh "$DATA" | cut -f1) of JPEG on disk"
"$NAANI" data info "$DATA" --size 256 | tail -4

run() { # name, extra options...
  local name=$1; shift
  local out=$ROOT/run-$name
  rm -rf "$out"
  /usr/bin/time -v "$NAANI" train --model "$MODEL" --data "$DATA" --image-size 256 --threads 2 --batch-size 32 \
      --validation-split 0.05 --out "$out" "$@" >"$ROOT/$name.log" 2>"$ROOT/$name.time" || { tail -20 "$ROOT/$name.log" "$ROOT/$name.time"; exit 1; }
  python3 - "$out/metrics.json" "$ROOT/$name.time" "$name" <<'EOF'
import json, re, sys
metrics = json.load(open(sys.argv[1]))
rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(sys.argv[2]).read()).group(1))
pipeline = metrics["training"].get("pipeline", {})
print(f"{sys.argv[3]:>12}: peak RSS {rss_kb / 1024:,.0f} MiB; mean {metrics['training']['images_per_second']:,.0f} img/s over the epochs; "
      f"waited {pipeline.get('wait_seconds', 0):.1f} s for data in {metrics['training']['seconds']:.1f} s of training; "
      f"validation accuracy {metrics['validation']['accuracy']:.4f}")
for i, e in enumerate(pipeline.get("epochs", [])):
    print(f"{'':>14}epoch {i + 1}: waited {e['wait_seconds']:.1f} s for data, read/decode {e['read_seconds']:.1f} s")
EOF
  grep -E "^Epoch" "$ROOT/$name.log" | sed 's/^/              /'
}

run pipeline --epochs 2 --workers 1 --cache auto
run no-pipeline --epochs 1 --workers 0 --cache none
