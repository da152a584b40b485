#!/usr/bin/env bash
# Smoke test of the Linux bundle: build it (unless BUNDLE points at one), then run the bundled
# executable offscreen on a tiny checkpoint with a scripted prompt and a screenshot; it must
# exit 0 and write the PNG. Prints the build time, the run time and the bundle size.
#
#   packaging/linux/smoke.sh                 # build into dist/ then test
#   BUNDLE=dist/llada-desktop packaging/linux/smoke.sh   # test an existing bundle
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python}"
OUT="${LLADA_BUNDLE_OUT:-$ROOT/dist}"
if [[ -z "${BUNDLE:-}" ]]; then
    start=$(date +%s)
    packaging/linux/build.sh
    echo "build: $(( $(date +%s) - start )) s"
    BUNDLE="$OUT/llada-desktop"
fi
EXE="$BUNDLE/llada-desktop"
[[ -x "$EXE" ]] || { echo "smoke: no executable at $EXE" >&2; exit 2; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" -m app.cli make-tiny "$WORK/tiny" >/dev/null
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1
"$EXE" --version
start=$(date +%s)
"$EXE" app --model "$WORK/tiny" --prompt "Hello from the bundle" --screenshot "$WORK/shot.png" \
    --data-dir "$WORK/data" --gen-length 16 --steps 8 --block-length 8 --backend torch
code=$?
echo "run: $(( $(date +%s) - start )) s, exit $code"
[[ $code -eq 0 && -s "$WORK/shot.png" ]] || { echo "smoke: FAILED" >&2; exit 1; }
mkdir -p "$ROOT/out" && cp "$WORK/shot.png" "$ROOT/out/bundle-screenshot.png"
echo "bundle size: $(du -sh "$BUNDLE" | cut -f1) ($BUNDLE)"
echo "smoke: OK"
