"""The MLX path never imports torch, even where torch is installed, and works where it is not.

tests/mlx_only.sh repeats these commands in a venv that has no torch at all.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from import_guard import ROOT, run_guarded

pytest.importorskip("mlx.core")


def test_the_guard_sees_a_torch_import(tmp_path):
    pytest.importorskip("torch")
    result, imports = run_guarded(tmp_path, "generate", "--backend", "torch", "--prompt",
                                  "What is 47 + 58?")
    assert result.returncode == 0, result.stderr
    assert "torch" in imports


def test_help_imports_no_backend(tmp_path):
    code = ("import sys; from app.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = {'torch', 'mlx', 'transformers', 'numpy'} & {m.split('.')[0] for m in sys.modules}\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_generate_on_mlx_answers_without_torch(tmp_path):
    result, imports = run_guarded(tmp_path, "generate", "--backend", "mlx", "--prompt",
                                  "What is 47 + 58?", "--json")
    assert result.returncode == 0, result.stderr
    assert '"text": "105"' in result.stdout and '"backend": "mlx"' in result.stdout
    assert imports == ""


def test_without_torch_the_installed_backend_is_chosen(tmp_path):
    result, imports = run_guarded(tmp_path, "generate", "--prompt", "What is 47 + 58?", "--json",
                                  hide_torch=True)
    assert result.returncode == 0, result.stderr
    assert '"backend": "mlx"' in result.stdout and imports == ""


def test_chat_on_mlx_without_torch(tmp_path):
    result, imports = run_guarded(tmp_path, "chat", "--backend", "mlx",
                                  stdin="What is 12 + 30?\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "LLaDA: 42" in result.stdout and imports == ""


def test_commands_that_need_torch_say_what_to_install(tmp_path):
    result, _ = run_guarded(tmp_path, "train", str(tmp_path / "run"), hide_torch=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'llada train: error: llada train needs torch, which is not installed '
        '(pip install "llada-desktop[torch]")']
    result, _ = run_guarded(tmp_path, "generate", "--backend", "torch", "--prompt", "Hi",
                            hide_torch=True)
    assert result.returncode == 2 and 'pip install "llada-desktop[torch]"' in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_window_on_mlx_without_torch(tmp_path):
    shot = tmp_path / "window.png"
    result, imports = run_guarded(tmp_path, "app", "--backend", "mlx", "--prompt",
                                  "What is 47 + 58?", "--screenshot", str(shot), "--timeout", "240")
    assert result.returncode == 0, result.stderr
    assert shot.stat().st_size > 10_000 and imports == ""
