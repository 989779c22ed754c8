#!/usr/bin/env bash
# The main job: train the seed model mnist-baseline on the full Fashion-MNIST and write its report.
# Installs the data from Debian when missing. Extra arguments go to `naani train` (e.g. --epochs 5).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/main-job.sh
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! fashion_mnist_present; then
  echo "Installing Debian's dataset-fashion-mnist..."
  sudo_ apt-get update -qq && sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
dotnet build src/Naani.Cli -c Release -nologo -v q
exec dotnet src/Naani.Cli/bin/Release/net10.0/Naani.Cli.dll train "${main_job_options[@]}" --seed 42 --out runs/mnist-baseline-fashion "$@"
