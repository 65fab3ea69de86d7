#!/usr/bin/env bash
# scripts/check-portable.sh VKFT: checks that a `cmake --preset linux-portable` binary needs only
# glibc's libraries at load time (the Vulkan loader is opened by volk at run time), prints the
# newest glibc symbol version it references (the oldest glibc it runs on; at most 2.31), and runs its
# `vkft selftest` on the device at hand.
set -euo pipefail
vkft=${1:?usage: scripts/check-portable.sh path/to/vkft}
needed=$(objdump -p "$vkft" | awk '/NEEDED/ {print $2}')
echo "check-portable: $vkft needs: $(echo $needed)"
for lib in $needed; do
  case "$lib" in
    libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | ld-linux*.so.*) ;;
    *)
      echo "check-portable: $vkft links $lib, which is not part of glibc" >&2
      exit 1
      ;;
  esac
done
floor=$(objdump -T "$vkft" | grep -o 'GLIBC_[0-9.]*' | sort -u -t. -k1,1 -k2,2n -k3,3n | tail -1)
echo "check-portable: glibc symbol versions up to $floor (runs on glibc >= ${floor#GLIBC_})"
# the promise (README): glibc 2.31 (Debian 11, Ubuntu 20.04) and newer
if [ "$(printf '%s\n' "${floor#GLIBC_}" 2.31 | sort -V | tail -1)" != 2.31 ]; then
  echo "check-portable: $vkft needs glibc ${floor#GLIBC_}, newer than 2.31 (src/platform/glibc_floor.h)" >&2
  exit 1
fi
"$vkft" selftest >/dev/null
echo "check-portable: vkft selftest passed"
