#!/usr/bin/env bash
# Build the Linux onedir bundle, dist/llada-desktop/ (run from anywhere): MLX and no torch, the
# same bundle as the macOS app (packaging/common.py), so the Mac build can be rehearsed here.
# Needs a Python with the app, the mlx extra and PyInstaller, and no need for torch:
#   python -m venv /tmp/packvenv && /tmp/packvenv/bin/pip install -e ".[mlx,packaging]"
#   PYTHON=/tmp/packvenv/bin/python packaging/linux/build.sh
# Fails (exit 1) when torch or llada_torch got into the bundle, or MLX or the demo model did not.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${LLADA_BUNDLE_OUT:-$ROOT/dist}"
WORK="${LLADA_BUNDLE_WORK:-$ROOT/build/pyinstaller-linux}"
PYTHON="${PYTHON:-python}"
cd "$ROOT"
"$PYTHON" -c 'import mlx.core' || { echo "build.sh: $PYTHON has no mlx (pip install -e \".[mlx,packaging]\")" >&2; exit 2; }
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$OUT" --workpath "$WORK" packaging/linux/llada-desktop.spec
"$PYTHON" packaging/check_bundle.py "$OUT/llada-desktop" "$OUT/llada-desktop/llada-desktop"
du -sh "$OUT/llada-desktop"
