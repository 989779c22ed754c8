#!/usr/bin/env bash
# A coverage-guided fuzzing campaign on one of Naani's readers of untrusted bytes (docs/RELIABILITY.md):
#   scripts/fuzz.sh TARGET [--minutes M]      TARGET: model model-raw idx idx-gz cifar10 cifar100 keras-h5 image keras-json keras-archive
# Installs afl++ (apt) and the sharpfuzz tool (dotnet tool) when missing, builds fuzz/Naani.Fuzz in Release into
# fuzz/out/TARGET, instruments the assemblies that hold the target's parsing code with sharpfuzz, runs afl-fuzz on one
# core for M minutes (default 10) starting from fuzz/corpus/TARGET, and prints the campaign's figures from
# fuzzer_stats. Findings stay in fuzz/findings/TARGET-<time>/default/{crashes,hangs}; replay one with
#   dotnet fuzz/out/TARGET/Naani.Fuzz.dll TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: scripts/fuzz.sh TARGET [--minutes M]; targets: model model-raw idx idx-gz cifar10 cifar100 keras-h5 image keras-json keras-archive" >&2; exit 2; }
[ $# -ge 1 ] || usage
target=$1; shift
minutes=10
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) minutes=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done

# The assemblies whose branches AFL should see: the reader's own (Naani.Keras.dll holds the HDF5 parser too).
case $target in
  model|model-raw|idx|idx-gz|cifar10|cifar100) instrument=(Naani.dll) ;;
  keras-h5|keras-archive) instrument=(Naani.dll Naani.Keras.dll) ;;
  keras-json) instrument=(Naani.dll) ;;
  image) instrument=(Naani.dll Naani.Vision.dll) ;;  # the decoders are SkiaSharp's native code: AFL sees only the managed side
  *) usage ;;
esac

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v afl-fuzz >/dev/null; then
  echo "Installing afl++..."
  sudo_ apt-get update -qq && sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null
fi
tools=fuzz/tools
if [ ! -x $tools/sharpfuzz ]; then
  echo "Installing the sharpfuzz tool..."
  dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path $tools >/dev/null
fi

# A fresh build each time: sharpfuzz rewrites assemblies in place.
out=fuzz/out/$target
rm -rf "$out"
dotnet build fuzz/Naani.Fuzz -c Release -nologo -v q -o "$out" >/dev/null
for dll in "${instrument[@]}"; do
  $tools/sharpfuzz "$out/$dll" >/dev/null
done

findings=fuzz/findings/$target-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$findings"
dict=()
[ -f fuzz/dict/$target.dict ] && dict=(-x fuzz/dict/$target.dict)
[ "$target" = model-raw ] && dict=(-x fuzz/dict/model.dict)

# In a container: no CPU governor to check, no core dump handler to wait for, no core to pin to.
# The harness runs under a 1 GiB GC heap limit, so an allocation a crafted header provokes crashes (OutOfMemory)
# instead of taking the machine's memory.
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1
export DOTNET_GCHeapHardLimit=0x40000000 DOTNET_TieredPGO=0
echo "Fuzzing $target for $minutes minute(s): afl-fuzz output in $findings"
set +e
afl-fuzz -i fuzz/corpus/$target -o "$findings" -t 5000 -m none -V $((minutes * 60)) "${dict[@]}" \
  -- dotnet "$out/Naani.Fuzz.dll" "$target" > "$findings/afl.log" 2>&1
status=$?
set -e
stats=$findings/default/fuzzer_stats
if [ ! -f "$stats" ]; then
  echo "afl-fuzz stopped before writing its statistics (exit $status); the end of its log:" >&2
  tail -n 30 "$findings/afl.log" >&2
  exit 1
fi
echo "Campaign $target, $minutes minute(s):"
grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|corpus_found|bitmap_cvg|edges_found|total_edges|saved_crashes|saved_hangs|unique_crashes|unique_hangs) ' "$stats"
crashes=$(find "$findings/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
hangs=$(find "$findings/default/hangs" -type f -name 'id:*' 2>/dev/null | wc -l)
echo "crash inputs: $crashes, hang inputs: $hangs (in $findings/default)"
