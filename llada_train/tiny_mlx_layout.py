"""A tiny LLaDA 2.x checkpoint in the MLX layout mlx-community publishes: mlx-lm's `llada2_moe`
(the layout of LLaDA2.0-mini-4bit, "mlx-lm 0.28.4" on its card): the experts stacked into
`…mlp.switch_mlp.{gate,up,down}_proj`, every Linear, expert stack and the embedding quantized by
MLX's own `nn.quantize` (the router's weight and expert bias stay float: it is no Linear), and
config.json's `quantization`. `bits=None` keeps the weights float (as LLaDA2.1-mini-bf16);
`prefix="language_model."` writes mlx-vlm's naming instead.

The layout is inferred from mlx-lm's llada2_moe.py (its sanitize stacks the experts and keeps the
official names otherwise), not checked against a downloaded index (`../shared/llada2-spec.md`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "generation_config.json")


def write_mlx_layout(source: str | Path, out: str | Path, *, bits: Optional[int] = 4,
                     group_size: int = 32, prefix: str = "") -> Path:
    """Quantize the LLaDA 2.x checkpoint in `source` (the official layout) into `out`."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten

    from llada_mlx import load

    source, out = Path(source), Path(out)
    model, _ = load(source)

    def quantizable(_path: str, module: nn.Module) -> bool:
        return hasattr(module, "to_quantized") and module.weight.shape[-1] % group_size == 0

    if bits is not None:
        nn.quantize(model, group_size=group_size, bits=bits, class_predicate=quantizable)
    out.mkdir(parents=True, exist_ok=True)
    weights = {prefix + name: value for name, value in tree_flatten(model.parameters())}
    mx.save_safetensors(str(out / "model.safetensors"), weights, metadata={"format": "mlx"})
    for name in SIDE_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    if bits is not None:
        config["quantization"] = config["quantization_config"] = {"group_size": group_size,
                                                                  "bits": bits}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return out
