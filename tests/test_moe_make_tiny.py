"""`llada make-tiny --arch llada-moe --dense-layers ...`: a tiny LLaDA-MoE whose moe_layer_freq
marks some layers dense, which both backends load and agree on (with the float64 NumPy forward
of tests/test_moe.py); bad layer lists are one sentence; the fit check counts the dense width."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main
from test_moe import assert_close_to_reference, canvas, read_checkpoint, reference_forward


@pytest.fixture(scope="module")
def dense_moe(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "moe"
    assert main(["make-tiny", str(folder), "--arch", "llada-moe", "--layers", "3",
                 "--dense-layers", "0,2", "--seed", "4"]) == 0
    return folder


def test_make_tiny_writes_the_dense_layers_asked_for(dense_moe, capsys):
    config, tensors = read_checkpoint(dense_moe)
    assert config["moe_layer_freq"] == [0, 1, 0]
    d, inner = config["hidden_size"], config["dense_intermediate_size"]
    for layer in (0, 2):
        prefix = f"model.layers.{layer}.mlp."
        assert tensors[prefix + "gate_proj.weight"].shape == (inner, d)
        assert tensors[prefix + "down_proj.weight"].shape == (d, inner)
        assert not any(name.startswith(prefix + "experts.") or name == prefix + "gate.weight"
                       for name in tensors)
    assert "model.layers.1.mlp.experts.0.up_proj.weight" in tensors
    assert "model.layers.1.mlp.gate.weight" in tensors


def test_torch_and_mlx_agree_on_the_dense_layers_in_float32(dense_moe):
    torch = pytest.importorskip("torch")
    mx = pytest.importorskip("mlx.core")
    import llada_mlx
    import llada_torch

    tmodel, tokenizer = llada_torch.load(dense_moe, device="cpu", dtype="float32")
    mmodel, _ = llada_mlx.load(dense_moe, dtype="float32")
    assert [type(layer.mlp).__name__ for layer in tmodel.model.layers] == \
        [type(layer.mlp).__name__ for layer in mmodel.layers] == ["MLP", "SparseMoeBlock", "MLP"]
    ids = canvas(tmodel.args, tokenizer)
    with torch.no_grad():
        ours = tmodel(torch.tensor([ids])).numpy()[0]
    theirs = np.array(mmodel(mx.array([ids])))[0]
    expected = reference_forward(dense_moe, ids)
    assert_close_to_reference(ours, expected, "torch, dense layers 0 and 2")
    assert_close_to_reference(theirs, expected, "mlx, dense layers 0 and 2")
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * float(np.abs(ours).max()))


@pytest.mark.parametrize("argv, sentence", [
    (["--arch", "llada-moe", "--dense-layers", "2"],
     "dense layer(s) 2 outside the 2 layers (0 to 1)"),
    (["--arch", "llada-moe", "--dense-layers", "1,0"],
     "every one of the 2 layers would be dense; a LLaDA-MoE checkpoint needs at least one layer "
     "of experts"),
    (["--dense-layers", "0"], "--dense-layers applies to --arch llada-moe only"),
])
def test_a_layer_list_that_cannot_be_built_is_one_sentence(argv, sentence, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["make-tiny", str(out), *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"llada make-tiny: error: {sentence}"]
    assert not (out / "config.json").exists()


@pytest.mark.parametrize("value", ["one", "0,-1"])
def test_a_malformed_layer_list_is_a_usage_error(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["make-tiny", str(tmp_path / "out"), "--arch", "llada-moe", "--dense-layers", value])
    assert stopped.value.code == 2
    assert "argument --dense-layers:" in capsys.readouterr().err


def test_the_fit_check_counts_a_dense_layer_s_width(dense_moe):
    from app.models import fit

    config = json.loads((dense_moe / "config.json").read_text())
    dims = fit.Dimensions.of(config)
    routed = config["num_experts_per_tok"] * config["expert_intermediate_size"]
    assert config["dense_intermediate_size"] > routed  # so the test can tell the two apart
    assert dims.ffn_width == config["dense_intermediate_size"]
