#!/usr/bin/env bash
# The Mac user's install, checked on this machine: a fresh venv with the MLX extra alone (no
# torch). The commands a new user runs first, then every test that does not need torch. Fails
# if torch is installed there or imported anywhere on the way.
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1
VENV="${MLX_ONLY_VENV:-.venv-mlx-only}"
rm -rf "$VENV"
python -m venv "$VENV"
PY="$VENV/bin/python"
if ! "$PY" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[mlx,dev]" > "$VENV/install.log" 2>&1; then
    cat "$VENV/install.log"; exit 1
fi
"$PY" - <<'PY'
import importlib.util, sys
if importlib.util.find_spec("torch") is not None:
    sys.exit("mlx-only: torch is installed in the MLX-only venv")
PY
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
export HF_HOME="$SCRATCH/hf"  # no downloaded model: the bundled demo answers
# Every process below records the torch modules it ended with; all must be empty.
export PYTHONPATH="$PWD/tests/torch_guard${PYTHONPATH:+:$PYTHONPATH}" LLADA_TORCH_GUARD="$SCRATCH/torch-imports"
LLADA="$VENV/bin/llada"

"$LLADA" --help > /dev/null
"$LLADA" generate --prompt "What is 47 + 58?" > "$SCRATCH/answer.txt"
grep -qx "105" "$SCRATCH/answer.txt" || { echo "mlx-only: demo answered $(cat "$SCRATCH/answer.txt"), not 105"; exit 1; }
printf 'What is 12 + 30?\n/quit\n' | "$LLADA" chat > "$SCRATCH/chat.txt"
grep -q "LLaDA: 42" "$SCRATCH/chat.txt" || { echo "mlx-only: llada chat said:"; cat "$SCRATCH/chat.txt"; exit 1; }
"$LLADA" app --prompt "What is 47 + 58?" --screenshot "$SCRATCH/window.png" \
    --data-dir "$SCRATCH/data" --timeout 300
test -s "$SCRATCH/window.png"
if [ -s "$LLADA_TORCH_GUARD" ]; then
    echo "mlx-only: torch was imported:"; cat "$LLADA_TORCH_GUARD"; exit 1
fi
echo "mlx-only: llada --help, generate (105), chat (42) and the window ran without torch"
unset LLADA_TORCH_GUARD
"$PY" -m pytest -q -p no:cacheprovider
