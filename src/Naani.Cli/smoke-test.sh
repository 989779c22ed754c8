#!/usr/bin/env bash
# Smoke test of the naani command: builds it, makes a tiny MNIST-style IDX folder, and runs every command on it,
# checking exit codes (0 ok, 1 runtime failure, 2 usage error), the files written and the keys of the JSON.
# Usage: src/Naani.Cli/smoke-test.sh            (from anywhere; needs dotnet and python3; takes about a minute)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$(mktemp -d -t naani-smoke.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "building..."
dotnet build "$here/Naani.Cli.csproj" -c Release -v quiet -nologo >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
naani="$here/bin/Release/net10.0/Naani.Cli"
[ -x "$here/bin/Release/net10.0/naani" ] && naani="$here/bin/Release/net10.0/naani"

failures=0
pass() { echo "  ok    $1"; }
fail() { echo "  FAIL  $1"; failures=$((failures + 1)); }

# expect CODE DESCRIPTION -- ARGS...: runs naani, keeps stdout/stderr in $work/out, $work/err.
expect() {
    local code="$1" what="$2"; shift 3
    "$naani" "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if [ "$rc" -eq "$code" ]; then pass "$what (exit $rc)"; else
        fail "$what: expected exit $code, got $rc"; sed 's/^/        | /' "$work/out" "$work/err" | tail -20; fi
}

# no_stack_trace DESCRIPTION: the last command printed no stack trace.
no_stack_trace() {
    if grep -qE '^\s+at .+\(' "$work/out" "$work/err"; then fail "$1 prints a stack trace"; else pass "$1 prints no stack trace"; fi
}

# json_check FILE DESCRIPTION PYTHON-EXPRESSION-ON-m
json_check() {
    if python3 - "$1" "$3" <<'EOF' 2>"$work/py"; then pass "$2"; else fail "$2: $(tail -1 "$work/py")"; fi
import json, sys
m = json.load(open(sys.argv[1]))
assert eval(sys.argv[2]), sys.argv[2]
EOF
}

echo "making a tiny IDX dataset in $work/tiny..."
python3 - "$work/tiny" <<'EOF'
# 28x28 grey images of 10 classes: class k is a bright 6x6 square at one of 10 places, plus noise.
# Training files raw, test files gzipped, as the loader takes both.
import gzip, os, random, struct, sys
root = sys.argv[1]; os.makedirs(root)
rng = random.Random(0)
def images(n):
    labels, pixels = [], bytearray()
    for _ in range(n):
        k = rng.randrange(10); labels.append(k)
        top, left = 3 + (k // 5) * 12, 1 + (k % 5) * 5
        for r in range(28):
            for c in range(28):
                inside = top <= r < top + 6 and left <= c < left + 6
                pixels.append(min(255, (200 if inside else 0) + rng.randrange(40)))
    return labels, bytes(pixels)
def write(name, data, compress):
    opener = gzip.open if compress else open
    with opener(os.path.join(root, name + (".gz" if compress else "")), "wb") as f: f.write(data)
for split, n, compress in (("train", 240, False), ("t10k", 60, True)):
    labels, pixels = images(n)
    write(f"{split}-images-idx3-ubyte", struct.pack(">IIII", 0x803, n, 28, 28) + pixels, compress)
    write(f"{split}-labels-idx1-ubyte", struct.pack(">II", 0x801, n) + bytes(labels), compress)
EOF

echo "help:"
expect 0 "naani --help" -- --help
for c in train summary evaluate bench; do expect 0 "naani $c --help" -- "$c" --help; done
expect 2 "naani with no command" --
expect 2 "unknown command" -- frobnicate

echo "train:"
run="$work/run"
expect 0 "train small-32 on the tiny set" -- train --model small-32 --data "$work/tiny" --epochs 2 --batch-size 16 --seed 1 --threads 1 --out "$run"
grep -q "Epoch 2/2" "$work/out" && pass "prints per-epoch lines when not interactive" || fail "no 'Epoch 2/2' line"
grep -q "Confusion matrix" "$work/out" && pass "prints the confusion matrix" || fail "no confusion matrix"
[ -f "$run/model.naani" ] && pass "writes model.naani" || fail "no $run/model.naani"
m="$run/metrics.json"
json_check "$m" "metrics.json has the top-level keys" \
    'set(m) >= {"model","dataset","data_source","epochs","batch_size","seed","threads","optimizer","learning_rate","parameters","test","validation","history","training"}'
json_check "$m" "metrics.json echoes the settings" \
    'm["model"]=="small-32" and m["epochs"]==2 and m["batch_size"]==16 and m["seed"]==1 and m["threads"]==1 and m["optimizer"]=="adam" and m["parameters"]>0'
json_check "$m" "test section: fractions in [0,1], 10 classes, matrix sums to 60" \
    'all(0<=m["test"][k]<=1 for k in ("accuracy","precision","recall","f1")) and len(m["test"]["per_class"])==10 and sum(map(sum,m["test"]["confusion_matrix"]))==60'
json_check "$m" "per_class entries have class/precision/recall/f1/support" \
    'all(set(c)>={"class","precision","recall","f1","support"} and 0<=c["precision"]<=1 for c in m["test"]["per_class"])'
json_check "$m" "history has 2 epochs of loss/accuracy/val_loss/val_accuracy" \
    'all(len(m["history"][k])==2 for k in ("loss","accuracy","val_loss","val_accuracy")) and 0<=m["validation"]["accuracy"]<=1'
json_check "$m" "training throughput and time are positive" 'm["training"]["images_per_second"]>0 and m["training"]["seconds"]>0'
ls -a "$run" | grep -q 'tmp' && fail "left a temporary file in $run" || pass "no temporary files left"

expect 0 "train with sgd, --lr and no validation" -- train -m small-32 -d "$work/tiny" -b 32 --optimizer sgd --lr 0.05 --validation-split 0 --out "$work/run-sgd"
json_check "$work/run-sgd/metrics.json" "sgd run records optimizer, learning rate, no validation" \
    'm["optimizer"]=="sgd" and abs(m["learning_rate"]-0.05)<1e-12 and m["validation"] is None and m["history"]["val_loss"]==[]'

echo "summary and evaluate:"
expect 0 "summary of a built-in model" -- summary --model mnist-baseline
grep -q "592,074" "$work/out" && pass "mnist-baseline has 592,074 parameters" || fail "summary lacks 592,074"
expect 0 "summary of the saved model" -- summary --model "$run/model.naani"
expect 0 "evaluate the saved model" -- evaluate --model "$run/model.naani" --data "$work/tiny"
json_check "$run/metrics-eval.json" "evaluate writes metrics-eval.json beside the model, same accuracy as train" \
    'abs(m["test"]["accuracy"] - json.load(open(sys.argv[1].replace("metrics-eval","metrics")))["test"]["accuracy"]) < 1e-9'
expect 0 "evaluate --out DIR" -- evaluate --model "$run/model.naani" --data "$work/tiny" --batch-size 7 --out "$work/eval"
json_check "$work/eval/metrics.json" "evaluate --out writes DIR/metrics.json with a test section" 'set(m["test"]) >= {"accuracy","loss","precision","recall","f1","per_class","confusion_matrix"}'

echo "bench:"
expect 0 "bench training steps" -- bench --model small-32 --batch-size 8 --steps 3 --warmup 1 --threads 1 --json "$work/bench.json"
json_check "$work/bench.json" "bench JSON has its keys" \
    'set(m) >= {"images_per_second","ms_per_step","model","batch_size","threads","mode","steps","peak_rss_bytes"} and m["mode"]=="train" and m["steps"]==3 and m["peak_rss_bytes"]>0'
expect 0 "bench --inference" -- bench --model small-32 --batch-size 8 --steps 3 --warmup 0 --inference --json "$work/bench-inf.json"
json_check "$work/bench-inf.json" "bench --inference says so" 'm["mode"]=="inference" and m["images_per_second"]>0'

echo "errors:"
expect 2 "unknown model" -- train --model resnet-9000 --data "$work/tiny"
grep -q "Unknown model 'resnet-9000'" "$work/err" && pass "names the unknown model" || fail "message does not name the model"
expect 2 "missing data folder" -- train --model small-32 --data "$work/nowhere"
expect 2 "data folder without IDX files" -- train --model small-32 --data "$work/run"
no_stack_trace "data folder without IDX files"
expect 2 "--epochs 0" -- train --model small-32 --data "$work/tiny" --epochs 0
expect 2 "--batch-size 0" -- train --model small-32 --data "$work/tiny" --batch-size 0
expect 2 "--batch-size -3 on bench" -- bench --model small-32 --batch-size -3
expect 2 "--epochs not a number" -- train --model small-32 --data "$work/tiny" --epochs many
expect 2 "--optimizer unknown" -- train --model small-32 --data "$work/tiny" --optimizer adagrad
expect 2 "--validation-split 1" -- train --model small-32 --data "$work/tiny" --validation-split 1
expect 2 "missing required options" -- train
expect 2 "evaluate a file that does not exist" -- evaluate --model "$work/none.naani" --data "$work/tiny"
echo "not a model" >"$work/bad.naani"
expect 1 "evaluate an unreadable model file" -- evaluate --model "$work/bad.naani" --data "$work/tiny"
no_stack_trace "unreadable model file"
expect 1 "unreadable model file with --verbose" -- evaluate --model "$work/bad.naani" --data "$work/tiny" --verbose
grep -qE 'at .+' "$work/err" && pass "--verbose shows the stack trace" || fail "--verbose shows no stack trace"
expect 1 "a validation split that leaves no validation sample" -- train --model small-32 --data "$work/tiny" --validation-split 0.001 --out "$work/none"
no_stack_trace "a validation split that leaves no validation sample"

echo
if [ "$failures" -eq 0 ]; then echo "smoke test passed"; else echo "smoke test: $failures failure(s)"; exit 1; fi
