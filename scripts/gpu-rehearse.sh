#!/usr/bin/env bash
# npm run gpu:rehearse: the GPU check as the lent machine will run it, here. Builds the bundle
# (npm run gpu:bundle), copies it alone into an empty temporary folder, and runs its run.sh
# with no network (unshare -n), an empty environment (env -i, PATH=/usr/bin:/bin) and this
# machine's node, npm and npx hidden (a private mount namespace binds an empty file over
# each), so anything the bundle takes from outside itself fails here first. Without a GPU
# it must end with run.sh's "no device" status (3) after the CPU side of every step; any
# other status fails the rehearsal. Needs root (or unprivileged user namespaces) for unshare.
#
#   bash scripts/gpu-rehearse.sh [--no-build]     OUT=dir keeps the logs and summary.json
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" != "--no-build" ]; then
  node "$root/scripts/gpu-bundle.js"
fi
[ -f "$root/gpu-bundle/run.sh" ] || { echo "gpu:rehearse: no gpu-bundle/ (run npm run gpu:bundle)"; exit 1; }

stage="$(mktemp -d /tmp/gpu-rehearse.XXXXXX)"
trap 'rm -rf "$stage"' EXIT
cp -r "$root/gpu-bundle" "$stage/bundle"
mkdir -p "$stage/out"
empty="$stage/empty"
: > "$empty"

# Every node / npm / npx this machine has, wherever PATH or the usual folders put them.
hide=()
for name in node nodejs npm npx corepack; do
  for p in $(type -a -P "$name" 2>/dev/null) /usr/bin/$name /usr/local/bin/$name /bin/$name; do
    [ -e "$p" ] || continue
    real="$(readlink -f "$p")"
    for f in "$p" "$real"; do
      case " ${hide[*]:-} " in *" $f "*) ;; *) hide+=("$f") ;; esac
    done
  done
done
binds=""
for f in "${hide[@]:-}"; do
  [ -n "$f" ] && [ -f "$f" ] && binds+="mount --bind '$empty' '$f' && "
done
echo "gpu:rehearse: hiding ${hide[*]:-nothing}"

t0=$(date +%s)
set +e
# Inside: node, npm and npx must fail to run before run.sh starts.
hidden_check='for n in node npm npx; do if env -i PATH=/usr/bin:/bin $n --version >/dev/null 2>&1; then echo "gpu:rehearse: $n still runs inside the rehearsal"; exit 97; fi; done; '
# As root directly; otherwise in a user namespace of our own (-r), where the binds are allowed.
userns=""
[ "$(id -u)" = 0 ] || userns="-r"
unshare $userns -n -m --propagation private sh -c "${binds} ${hidden_check} cd '$stage' && exec env -i PATH=/usr/bin:/bin HOME='$stage' TMPDIR='$stage' OUT='$stage/out' \
  TEMPERED_GPU_CHECK_SECONDS='${TEMPERED_GPU_CHECK_SECONDS:-900}' bash '$stage/bundle/run.sh'"
status=$?
set -e
seconds=$(( $(date +%s) - t0 ))
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && cp -r "$stage/out/." "$OUT/"; fi
size=$(du -sb "$root/gpu-bundle" | cut -f1)
echo "gpu:rehearse: run.sh exited with status $status in ${seconds} s; bundle $(( size / 1048576 )) MiB"
if [ "$status" = 3 ]; then
  echo "gpu:rehearse: passed (no device here, as expected; the CPU side of every step passed)"
  exit 0
fi
if [ "$status" = 0 ]; then
  echo "gpu:rehearse: passed (a GPU is present and every step passed)"
  exit 0
fi
echo "gpu:rehearse: FAILED: expected the 'no device' status 3 (see the log above)"
exit 1
