"""The tiny checkpoint builder writes the official LLaDA-Instruct layout."""

import json

from safetensors import safe_open

from llada_core import tokens
from llada_core.checkpoint import weight_files
from llada_train.tiny import TinySpec, make_tiny_checkpoint

OFFICIAL_FIELDS = {
    "activation_type", "alibi", "alibi_bias_max", "architectures", "attention_dropout",
    "attention_layer_norm", "attention_layer_norm_with_affine", "auto_map", "bias_for_layer_norm",
    "block_group_size", "block_type", "d_model", "embedding_dropout", "embedding_size",
    "eos_token_id", "flash_attention", "include_bias", "include_qkv_bias", "init_cutoff_factor",
    "init_device", "init_fn", "init_std", "input_emb_norm", "layer_norm_type",
    "layer_norm_with_affine", "mask_token_id", "max_sequence_length", "mlp_hidden_size",
    "mlp_ratio", "model_type", "multi_query_attention", "n_heads", "n_kv_heads", "n_layers",
    "pad_token_id", "precision", "residual_dropout", "rms_norm_eps", "rope", "rope_full_precision",
    "rope_theta", "scale_logits", "torch_dtype", "transformers_version", "use_cache", "vocab_size",
    "weight_tying",
}


def test_files_and_config_fields(tiny_checkpoint):
    names = {p.name for p in tiny_checkpoint.iterdir()}
    assert {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "model.safetensors.index.json",
            "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} <= names
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert OFFICIAL_FIELDS <= set(config)
    assert config["model_type"] == "llada" and config["block_type"] == "llama"
    assert config["vocab_size"] == config["embedding_size"]
    assert config["vocab_size"] % 64 == 0


def test_special_tokens_in_official_order(tiny_checkpoint):
    tokenizer_json = json.loads((tiny_checkpoint / "tokenizer.json").read_text())
    added = sorted(tokenizer_json["added_tokens"], key=lambda t: t["id"])
    contents = [t["content"] for t in added]
    assert contents == tokens.SPECIAL_TOKENS
    first = added[0]["id"]
    assert [t["id"] for t in added] == list(range(first, first + len(added)))
    assert len(tokens.SPECIAL_TOKENS) == 269  # 126080..126348 in the 8B tokenizer
    by_name = {t["content"]: t["id"] for t in added}
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert by_name[tokens.MASK] == config["mask_token_id"] == first + 256
    assert by_name[tokens.EOS] == config["eos_token_id"] == config["pad_token_id"] == first + 1
    assert by_name[tokens.EOT] == first + 268
    tokenizer_config = json.loads((tiny_checkpoint / "tokenizer_config.json").read_text())
    assert tokenizer_config["add_bos_token"] is False
    assert tokenizer_config["chat_template"] == tokens.CHAT_TEMPLATE


def test_official_tensor_names_and_shapes(tiny_checkpoint):
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    d, hidden, rows = config["d_model"], config["mlp_hidden_size"], config["embedding_size"]
    shapes = {}
    for path in weight_files(tiny_checkpoint):
        with safe_open(str(path), framework="np") as shard:
            for name in shard.keys():
                shapes[name] = tuple(shard.get_slice(name).get_shape())
    assert len(shapes) == 3 + 9 * config["n_layers"]
    assert shapes["model.transformer.wte.weight"] == (rows, d)
    assert shapes["model.transformer.ff_out.weight"] == (rows, d)
    assert shapes["model.transformer.ln_f.weight"] == (d,)
    assert shapes["model.transformer.blocks.1.ff_proj.weight"] == (hidden, d)
    assert shapes["model.transformer.blocks.1.ff_out.weight"] == (d, hidden)
    assert shapes["model.transformer.blocks.0.attn_out.weight"] == (d, d)


def test_same_seed_same_checkpoint(tmp_path):
    a = make_tiny_checkpoint(tmp_path / "a", TinySpec(shards=1, seed=3))
    b = make_tiny_checkpoint(tmp_path / "b", TinySpec(shards=1, seed=3))
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()
