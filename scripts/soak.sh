#!/usr/bin/env bash
# The long crash-safety run: tests/kill.sh with many kill -9s (default 100) at random moments
# of a training run, resumed each time; the result must be byte-identical to an uninterrupted
# run. Usage: scripts/soak.sh [--kills N] [--seed S] [--binary build/vkft]
set -euo pipefail
cd "$(dirname "$0")/.."
kills=100 seed=$RANDOM vkft=build/vkft
while [ $# -gt 0 ]; do
  case $1 in
  --kills) kills=$2; shift 2 ;;
  --seed) seed=$2; shift 2 ;;
  --binary) vkft=$2; shift 2 ;;
  *) echo "usage: scripts/soak.sh [--kills N] [--seed S] [--binary build/vkft]"; exit 2 ;;
  esac
done
[ -x "$vkft" ] || { echo "soak: $vkft is not built (cmake --build build)"; exit 1; }
echo "soak: $kills kills, seed $seed"
exec bash tests/kill.sh "$vkft" "$kills" "$seed"
