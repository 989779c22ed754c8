#!/usr/bin/env bash
# The load test of naani serve: trains mnist-baseline on Fashion-MNIST if no model is given, starts the server on
# loopback, drives 1, 8 and 64 concurrent keep-alive clients posting real Fashion-MNIST test images as PNG (the load
# generator is bench/Naani.Bench's serve-load, a small C# program), and prints requests/s, p50/p95/p99 latency, errors
# and the server's peak RSS beside the in-process Predictor's throughput on the same images.
# Usage: bench/serve.sh [--model FILE] [--seconds S (10)] [--threads T (2)] [--max-batch B (32)] [--port P (18080)]
#                       [--modes png,json,tensor] [--per-request K (32): images per tensor request]
#                       [--replicas R (the thread count): passed to naani serve]
set -euo pipefail
cd "$(dirname "$0")/.."
model=""; seconds=10; threads=2; max_batch=32; port=18080; modes=png,json,tensor; per_request=32; replicas=
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --max-batch) max_batch=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --per-request) per_request=$2; shift 2 ;;
    --replicas) replicas=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
replicas=${replicas:-$threads}
dotnet build src/Naani.Cli -c Release -v q -nologo >/dev/null
dotnet build bench/Naani.Bench -c Release -v q -nologo >/dev/null
naani=(dotnet src/Naani.Cli/bin/Release/net10.0/Naani.Cli.dll)
out=$(mktemp -d)
if [ -z "$model" ]; then
  echo "Training mnist-baseline on Fashion-MNIST (1 epoch) for the server..."
  "${naani[@]}" train -m mnist-baseline -d fashion-mnist -e 1 -b 128 -t "$threads" -o "$out/run" >/dev/null
  model="$out/run/model.naani"
fi
"${naani[@]}" serve -m "$model" --name fashion --port "$port" --max-batch "$max_batch" --replicas "$replicas" -t "$threads" > "$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$out/serve.log"; echo "the server did not become ready" >&2; exit 1; }
# The server's pid is the dotnet process started above.
dotnet bench/Naani.Bench/bin/Release/net10.0/Naani.Bench.dll serve-load --url "http://127.0.0.1:$port" --name fashion --model "$model" \
  --seconds "$seconds" --max-batch "$max_batch" --threads "$threads" --pid "$server" --modes "$modes" --per-request "$per_request" --json "$out/serve-load.json"
echo "naani serve --replicas $replicas --max-batch $max_batch -t $threads; load: --per-request $per_request for JSON and tensor requests"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs); $(nproc) cores; results: $out/serve-load.json"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^naani_batch_size_(sum|count)' || true
