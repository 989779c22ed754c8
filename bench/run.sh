#!/usr/bin/env bash
# Naani vs PyTorch, side by side in one run on this machine: same model, batch, threads, warm-up
# and step count, float32. Prints images/s for both and the ratio, then GEMM GFLOP/s against the
# FMA peak measured here. Usage: bench/run.sh [--threads T] [--steps N] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2; steps=20; warmup=3; quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
unset OPENBLAS_CORETYPE   # let OpenBLAS pick its AVX-512 kernels
python=/usr/bin/python3
if ! $python -c 'import torch' 2>/dev/null; then
  echo "PyTorch missing: sudo apt-get install -y python3-torch libopenblas0-pthread" >&2; exit 1
fi
dotnet build src/Naani.Cli -c Release -v q -nologo >/dev/null
dotnet build bench/Naani.Bench -c Release -v q -nologo >/dev/null
naani=(dotnet src/Naani.Cli/bin/Release/net10.0/Naani.Cli.dll)
out=$(mktemp -d)

cases=("mnist-baseline 128 train" "mnist-baseline 32 train" "small-32 128 train" "naani-128 32 train" "cats-dogs-150 32 train"
       "mnist-baseline 128 inference" "small-32 128 inference" "naani-128 128 inference" "cats-dogs-150 128 inference")
[ $quick = 1 ] && cases=("mnist-baseline 128 train")

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; threads: $threads; steps: $steps (+$warmup warm-up)"
printf '%-16s %6s %-10s %12s %12s %8s\n' model batch mode naani_img/s torch_img/s ratio
for c in "${cases[@]}"; do
  set -- $c; model=$1; batch=$2; mode=$3
  s=$steps; [ "$model" = cats-dogs-150 ] || [ "$model" = naani-128 ] && s=$(( steps < 10 ? steps : 10 ))
  flag=(); [ "$mode" = inference ] && flag=(--inference)
  "${naani[@]}" bench --model "$model" --batch-size "$batch" --threads "$threads" --steps "$s" --warmup "$warmup" "${flag[@]}" --json "$out/n.json" >/dev/null
  $python bench/pytorch_bench.py --model "$model" --batch-size "$batch" --threads "$threads" --steps "$s" --warmup "$warmup" "${flag[@]}" > "$out/t.json"
  $python - "$out/n.json" "$out/t.json" "$model" "$batch" "$mode" <<'PY'
import json, sys
n = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2]))
ni, ti = n["images_per_second"], t["images_per_second"]
print(f"{sys.argv[3]:<16} {sys.argv[4]:>6} {sys.argv[5]:<10} {ni:12.1f} {ti:12.1f} {ni/ti:7.2f}x   (peak RSS naani {n.get('peak_rss_bytes',0)/2**20:.0f} MiB, torch {t['peak_rss_bytes']/2**20:.0f} MiB)")
PY
done
echo
dotnet bench/Naani.Bench/bin/Release/net10.0/Naani.Bench.dll gemm --threads "$threads"
rm -rf "$out"
