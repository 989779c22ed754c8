#!/usr/bin/env bash
# Test accuracy of the main job's recipe (scripts/main-job.sh: mnist-baseline on Fashion-MNIST, 3 epochs, batch 32) over
# many seeds, for this checkout and, with --base REV, for another revision built in a temporary git worktree: each
# seed's accuracy side by side, the means and standard deviations, and the mean paired difference with its standard
# error. A kernel that sums in another order sends a seeded run down another path, and one seed's accuracy then moves
# as much as another seed's would (a few tenths of a point); whether a change costs accuracy is a question about the
# mean over seeds, which this answers.
# Usage: bench/seeds.sh [--base REV] [--seeds N (20)] [--first S (1)] [--threads T] [-- extra `naani train` options]
# About 7 s a run on 2 Zen 5 cores. Needs Fashion-MNIST (Debian's dataset-fashion-mnist; scripts/train.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/main-job.sh
base=""; seeds=20; first=1; threads=""; extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --first) first=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown option $1 (usage: bench/seeds.sh [--base REV] [--seeds N] [--first S] [--threads T] [-- train options])" >&2; exit 2 ;;
  esac
done
[[ "$seeds" =~ ^[0-9]+$ && "$seeds" -ge 1 ]] || { echo "--seeds wants a positive count, got '$seeds'" >&2; exit 2; }
[[ "$first" =~ ^[0-9]+$ ]] || { echo "--first wants a seed (a non-negative integer), got '$first'" >&2; exit 2; }
if ! fashion_mnist_present; then
  echo "Fashion-MNIST missing: run scripts/train.sh once (it installs Debian's dataset-fashion-mnist)" >&2; exit 1
fi
work=$(mktemp -d)
cleanup() {
  if [ -n "$base" ] && [ -d "$work/base" ]; then git worktree remove --force "$work/base" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

dotnet build src/Naani.Cli -c Release -nologo -v q >/dev/null
builds=(head); dirs=("$PWD")
if [ -n "$base" ]; then
  rev=$(git rev-parse --verify -q "$base^{commit}") || { echo "no such revision: $base" >&2; exit 2; }
  git worktree add --detach "$work/base" "$rev" >/dev/null 2>&1
  dotnet build "$work/base/src/Naani.Cli" -c Release -nologo -v q >/dev/null
  builds=(base head); dirs=("$work/base" "$PWD")
fi

# One run: prints its test accuracy. Both builds train this checkout's recipe.
run() {
  local dir=$1 seed=$2 out=$3
  dotnet "$dir/src/Naani.Cli/bin/Release/net10.0/Naani.Cli.dll" train "${main_job_options[@]}" \
    --seed "$seed" ${threads:+--threads "$threads"} --out "$out" "${extra[@]}" >"$out.log" 2>&1 \
    || { echo "training failed (seed $seed, $dir): see the end of its log:" >&2; tail -5 "$out.log" >&2; exit 1; }
  /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['test']['accuracy'])" "$out/metrics.json"
}

echo "naani train ${main_job_options[*]}${threads:+, $threads threads}, seeds $first..$((first + seeds - 1))${extra[*]:+, ${extra[*]}}"
[ -n "$base" ] && echo "base: $(git log -1 --format='%h %s' "$rev" | cut -c1-100)"
echo "head: $(git log -1 --format='%h %s' | cut -c1-100)$(git diff --quiet HEAD -- src || echo ' (with uncommitted changes)')"
printf '%6s' seed; for b in "${builds[@]}"; do printf '%10s' "$b"; done; echo
results="$work/results"
for ((s = first; s < first + seeds; s++)); do
  printf '%6d' "$s"; line="$s"
  for i in "${!builds[@]}"; do
    acc=$(run "${dirs[$i]}" "$s" "$work/${builds[$i]}-$s")
    printf '%10.4f' "$acc"; line="$line $acc"
  done
  echo; echo "$line" >>"$results"
done
/usr/bin/python3 - "$results" "${builds[@]}" <<'EOF'
import statistics as st, sys
rows = [list(map(float, l.split()[1:])) for l in open(sys.argv[1])]
names = sys.argv[2:]
for i, name in enumerate(names):
    v = [r[i] for r in rows]
    if len(v) > 1:
        print(f"{name}: mean {st.mean(v):.4f}, standard deviation {st.stdev(v):.4f}, range {min(v):.4f}-{max(v):.4f}")
if len(names) == 2:
    d = [r[1] - r[0] for r in rows]
    if len(d) > 1:
        se = st.stdev(d) / len(d) ** 0.5
        print(f"head - base, paired: mean {st.mean(d):+.4f} (standard error {se:.4f}; 95% interval {st.mean(d) - 1.96 * se:+.4f} to "
              f"{st.mean(d) + 1.96 * se:+.4f}), per seed {min(d):+.4f} to {max(d):+.4f}")
EOF
