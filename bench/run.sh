#!/usr/bin/env bash
# Naani vs PyTorch, side by side in one run on this machine: same model, batch, threads, warm-up
# and step count, float32. Prints images/s for both and the ratio, then GEMM GFLOP/s against the
# FMA peak measured here. Usage: bench/run.sh [--threads T] [--steps N] [--rounds R (2)] [--quick]
#   [--torch-allocator tcmalloc|glibc-tuned|default]
# PyTorch runs at its strongest: with tcmalloc (Debian's libtcmalloc-minimal4, LD_PRELOAD), as PyTorch's CPU
# performance guide recommends, or failing that with glibc's malloc tuned to keep its large buffers
# (MALLOC_MMAP_THRESHOLD_ etc.); with glibc's defaults it spends most of a convolution step in page faults.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2; steps=20; warmup=3; quick=0; rounds=2; allocator=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    --torch-allocator) allocator=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
unset OPENBLAS_CORETYPE   # let OpenBLAS pick its AVX-512 kernels
python=/usr/bin/python3
if ! $python -c 'import torch' 2>/dev/null; then
  echo "PyTorch missing: sudo apt-get install -y python3-torch libopenblas0-pthread" >&2; exit 1
fi
# Debian's PyTorch calls whatever libblas.so.3 the alternatives system points at: the reference BLAS (libblas3,
# 4x slower) unless OpenBLAS is installed.
blas=$(readlink -f "$(ls /usr/lib/*-linux-gnu/libblas.so.3 2>/dev/null | head -1)" 2>/dev/null || true)
case "$blas" in
  *openblas*) ;;
  *) echo "PyTorch would use ${blas:-no BLAS} rather than OpenBLAS: sudo apt-get install -y libopenblas0-pthread" >&2; exit 1 ;;
esac
tcmalloc=$(ls /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4 2>/dev/null | head -1 || true)
if [ "$allocator" = auto ]; then
  if [ -n "$tcmalloc" ]; then allocator=tcmalloc; else allocator=glibc-tuned; fi
fi
case "$allocator" in
  tcmalloc)
    [ -n "$tcmalloc" ] || { echo "tcmalloc missing: sudo apt-get install -y libtcmalloc-minimal4" >&2; exit 1; }
    torch_env=(env LD_PRELOAD="$tcmalloc") ;;
  glibc-tuned) torch_env=(env MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=1073741824) ;;
  default) torch_env=(env) ;;
  *) echo "--torch-allocator must be tcmalloc, glibc-tuned or default; got $allocator" >&2; exit 2 ;;
esac
dotnet build src/Naani.Cli -c Release -v q -nologo >/dev/null
dotnet build bench/Naani.Bench -c Release -v q -nologo >/dev/null
naani=(dotnet src/Naani.Cli/bin/Release/net10.0/Naani.Cli.dll)
out=$(mktemp -d)

cases=("mnist-baseline 128 train" "mnist-baseline 32 train" "small-32 128 train" "naani-128 32 train" "cats-dogs-150 32 train"
       "mnist-baseline 128 inference" "small-32 128 inference" "naani-128 128 inference" "cats-dogs-150 128 inference"
       "vgg16 1 inference" "vgg16 8 inference")
[ $quick = 1 ] && cases=("mnist-baseline 128 train")

echo "machine: $(lscpu | sed -n 's/^Model name: *//p') (family $(lscpu | sed -n 's/^CPU family: *//p'), model $(lscpu | sed -n 's/^Model: *//p')), $(nproc) cores, $(grep -o 'avx512f' /proc/cpuinfo | head -1 || echo 'no avx512'); threads: $threads; steps: $steps (+$warmup warm-up), best of $rounds alternating rounds"
echo "PyTorch $($python -c 'import torch; print(torch.__version__)') with BLAS $blas, allocator: $allocator${tcmalloc:+ ($tcmalloc)}"
printf '%-15s %5s %-9s %11s %11s %7s %11s %7s  %s\n' model batch mode naani/s torch/s vs_torch ort/s vs_ort "peak RSS naani/torch"
for c in "${cases[@]}"; do
  set -- $c; model=$1; batch=$2; mode=$3
  # Built-in models only (vgg16 arrives with the functional models).
  "${naani[@]}" summary --model "$model" >/dev/null 2>&1 || { echo "$model: not a built-in model here, skipped"; continue; }
  s=$steps
  # Large models: at most 10 steps; the fast ones (a few ms per step) run 10x the steps, or their timing is noise.
  case "$model" in naani-128|cats-dogs-150|vgg16) s=$(( steps < 10 ? steps : 10 ));; mnist-baseline|small-32) s=$(( steps * 10 ));; esac
  flag=(); [ "$mode" = inference ] && flag=(--inference)
  # Each framework runs $rounds times, alternating, and keeps its best: a shared 2-core VM is noisy.
  for r in $(seq 1 $rounds); do
    "${naani[@]}" bench --model "$model" --batch-size "$batch" --threads "$threads" --steps "$s" --warmup "$warmup" "${flag[@]}" --json "$out/n$r.json" >/dev/null
    "${torch_env[@]}" $python bench/pytorch_bench.py --model "$model" --batch-size "$batch" --threads "$threads" --steps "$s" --warmup "$warmup" "${flag[@]}" > "$out/t$r.json" 2>/dev/null || echo '{}' > "$out/t$r.json"
    echo '{}' > "$out/o$r.json"
    if [ "$mode" = inference ]; then
      dotnet bench/Naani.Bench/bin/Release/net10.0/Naani.Bench.dll ort --model "$model" --batch-size "$batch" --threads "$threads" \
        --steps "$s" --warmup "$warmup" --json "$out/o$r.json" >/dev/null 2>&1 || echo '{}' > "$out/o$r.json"
    fi
  done
  $python - "$out" "$rounds" "$model" "$batch" "$mode" <<'PY'
import json, sys
def best(prefix):
    runs = [json.load(open(f"{sys.argv[1]}/{prefix}{r}.json")) for r in range(1, int(sys.argv[2]) + 1)]
    runs = [r for r in runs if r.get("images_per_second")]
    return max(runs, key=lambda r: r["images_per_second"]) if runs else {}
n, t, o = best("n"), best("t"), best("o")
model, batch, mode = sys.argv[3:6]
ni, ti, oi = n["images_per_second"], t.get("images_per_second"), o.get("images_per_second")
fmt = lambda v: f"{v:11.1f}" if v else f"{'-':>11}"
ratio = lambda a, b: f"{a / b:6.2f}x" if b else f"{'-':>7}"
rss = f"{n.get('peak_rss_bytes', 0) / 2**20:.0f}/{t.get('peak_rss_bytes', 0) / 2**20:.0f} MiB"
print(f"{model:<15} {batch:>5} {mode:<9} {fmt(ni)} {fmt(ti)} {ratio(ni, ti)} {fmt(oi)} {ratio(ni, oi)}  {rss}")
PY
done
echo
dotnet bench/Naani.Bench/bin/Release/net10.0/Naani.Bench.dll gemm --threads "$threads"
rm -rf "$out"
