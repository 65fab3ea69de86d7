#!/usr/bin/env bash
# The long crash-safety run: tests/kill.sh with many kill -9s (default 100) at random moments
# of a training run, resumed each time; the result must be byte-identical to an uninterrupted
# run (a run that ends before its kill is checked and a new one started, so every kill lands in
# a running job). With --faults, the whole fault sweep of tests/faults.sh (ctest injects every
# second fault only) with a -DVKFT_FAULTS=ON build, by default the test command's build-asan.
# Usage: scripts/soak.sh [--kills N] [--seed S] [--binary build/vkft] [--faults [--binary B]]
set -euo pipefail
cd "$(dirname "$0")/.."
kills=100 seed=$RANDOM vkft= faults=0
while [ $# -gt 0 ]; do
  case $1 in
  --kills) kills=$2; shift 2 ;;
  --seed) seed=$2; shift 2 ;;
  --binary) vkft=$2; shift 2 ;;
  --faults) faults=1; shift ;;
  *) echo "usage: scripts/soak.sh [--kills N] [--seed S] [--binary build/vkft] [--faults]"; exit 2 ;;
  esac
done
if [ $faults = 1 ]; then
  vkft=${vkft:-build-asan/vkft}
  [ -x "$vkft" ] || { echo "soak: $vkft is not built (scripts/test.sh makes build-asan)"; exit 1; }
  echo "soak: the whole fault sweep with $vkft"
  exec bash tests/faults.sh "$vkft" "$(nproc)" 1
fi
vkft=${vkft:-build/vkft}
[ -x "$vkft" ] || { echo "soak: $vkft is not built (cmake --build build)"; exit 1; }
echo "soak: $kills kills, seed $seed"
exec bash tests/kill.sh "$vkft" "$kills" "$seed"
