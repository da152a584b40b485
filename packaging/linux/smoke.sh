#!/usr/bin/env bash
# Smoke test of the Linux bundle (MLX, no torch: the stand-in for the Mac app). Builds it
# (unless BUNDLE points at one), then runs the bundled executable on the demo model shipped
# inside it, with no model installed (an empty Hugging Face cache):
#   1. `llada-desktop generate --prompt "What is 47 + 58?"` must answer 105 on the mlx backend;
#   2. the window, offscreen, sends the same prompt and saves a screenshot, which must be a PNG
#      of at least 400x300 pixels and 10 kB (copied to out/bundle-screenshot.png).
# Prints the build time, each run's time and the bundle size.
#
#   PYTHON=/tmp/packvenv/bin/python packaging/linux/smoke.sh    # build into dist/ then test
#   BUNDLE=dist/llada-desktop packaging/linux/smoke.sh          # test an existing bundle
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
OUT="${LLADA_BUNDLE_OUT:-$ROOT/dist}"
PROMPT="What is 47 + 58?"
EXPECTED=105
fail() { echo "smoke: FAILED: $*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
seconds_since() { local ms=$(( $(now_ms) - $1 )); printf '%d.%03d' $(( ms / 1000 )) $(( ms % 1000 )); }

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
# No downloaded model, no network, no settings from this machine: the bundle is on its own.
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 HF_HOME="$WORK/hf" \
    XDG_DATA_HOME="$WORK/xdg-data" XDG_CONFIG_HOME="$WORK/xdg-config" \
    XDG_CACHE_HOME="$WORK/xdg-cache" LLADA_DESKTOP_DATA="$WORK/data"
"$EXE" --version

# 1. the command line: the bundled demo model, the backend chosen by what is in the bundle
start=$(now_ms)
code=0
"$EXE" generate --prompt "$PROMPT" --json >"$WORK/answer.json" 2>"$WORK/generate.err" || code=$?
echo "generate: $(seconds_since "$start") s, exit $code: $(cat "$WORK/answer.json")"
(( code == 0 )) || { cat "$WORK/generate.err" >&2; fail "generate exited $code"; }
grep -q '"backend": "mlx"' "$WORK/answer.json" || fail "generate did not run on mlx"
grep -q '"model": "[^"]*/app/resources/llada-demo"' "$WORK/answer.json" \
    || fail "generate did not use the bundled demo model"
grep -q "\"text\": \"$EXPECTED\"" "$WORK/answer.json" || fail "the answer is not $EXPECTED"

# 2. the window: the same prompt, scripted, then a screenshot
start=$(now_ms)
code=0
"$EXE" app --prompt "$PROMPT" --screenshot "$WORK/shot.png" --data-dir "$WORK/data" \
    --timeout 120 || code=$?
echo "window: $(seconds_since "$start") s, exit $code"
(( code == 0 )) || fail "the window exited $code"
[[ -s "$WORK/shot.png" ]] || fail "no screenshot"
[[ "$(head -c 8 "$WORK/shot.png" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] \
    || fail "the screenshot is not a PNG"
# IHDR: width and height are the big-endian 32-bit numbers at bytes 16 and 20
read -r width height < <(od -An -tu1 -j16 -N8 "$WORK/shot.png" \
    | awk '{print $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}')
bytes=$(stat -c %s "$WORK/shot.png")
echo "screenshot: ${width}x${height}, $bytes bytes"
(( width >= 400 && height >= 300 && bytes >= 10000 )) || fail "the screenshot is too small"
mkdir -p "$ROOT/out" && cp "$WORK/shot.png" "$ROOT/out/bundle-screenshot.png"
echo "bundle size: $(du -sh "$BUNDLE" | cut -f1) ($BUNDLE)"
echo "smoke: OK"
