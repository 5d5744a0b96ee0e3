#!/bin/bash
# Interop with Seagate's propeller: build its client library (libseagate_ilm)
# from a propeller checkout, link our own check program against it, and run it
# against our ILM daemon (two instances, as two hosts) with three emulated
# drives. Nothing of propeller enters this repository; CI cannot fetch its
# source, so this runs on a developer machine.
#
# usage: scripts/interop-propeller.sh PROPELLER_CHECKOUT   (after npm run build)
set -euo pipefail
src=${1:?usage: $0 PROPELLER_CHECKOUT}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/lvmlockd-propeller-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

gcc -fPIC -shared -D_GNU_SOURCE -o "$work/libseagate_ilm.so" "$src/src/lib_client.c"
gcc -I"$src/src" -o "$work/propeller-client" "$repo/test/interop/propeller-client.c" -L"$work" -lseagate_ilm

drives=()
for i in 0 1 2; do
  node "$repo/bin/idm-drive" --socket "$work/drive$i.sock" --state "$work/drive$i.json" >/dev/null 2>&1 &
  pids+=($!)
  drives+=("$work/drive$i.sock")
done
for h in a b; do
  ILM_RUN_DIR="$work/ilm-$h" ILM_LOG_DIR="$work/ilm-$h" node "$repo/bin/ilmd" -D 1 -E 3 &
  pids+=($!)
done
for f in "${drives[@]}" "$work/ilm-a/main.sock" "$work/ilm-b/main.sock"; do
  for _ in $(seq 100); do [ -S "$f" ] && break; sleep 0.1; done
done
LD_LIBRARY_PATH="$work" "$work/propeller-client" "$work/ilm-a" "$work/ilm-b" "${drives[@]}"
