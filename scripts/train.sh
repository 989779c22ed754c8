#!/usr/bin/env bash
# The main job: train the seed model mnist-baseline on the full Fashion-MNIST and write its report.
# Installs the data from Debian when missing. Extra arguments go to `naani train` (e.g. --epochs 5).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ ! -d "${NAANI_HOME:-$HOME/.naani}/datasets/fashion-mnist" ]; then
  echo "Installing Debian's dataset-fashion-mnist..."
  sudo_ apt-get update -qq && sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
dotnet build src/Naani.Cli -c Release -nologo -v q
exec dotnet src/Naani.Cli/bin/Release/net10.0/Naani.Cli.dll train --model mnist-baseline --data fashion-mnist \
  --epochs 3 --batch-size 32 --seed 42 --out runs/mnist-baseline-fashion "$@"
