#!/usr/bin/env bash
# Build the Linux onedir bundle: dist/llada-desktop/ (run from anywhere).
# Needs: the app installed with the torch extra, and `pip install -e ".[packaging]"` (PyInstaller).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${LLADA_BUNDLE_OUT:-$ROOT/dist}"
WORK="${LLADA_BUNDLE_WORK:-$ROOT/build/pyinstaller-linux}"
PYTHON="${PYTHON:-python}"
cd "$ROOT"
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$OUT" --workpath "$WORK" packaging/linux/llada-desktop.spec
du -sh "$OUT/llada-desktop"
