"""A training run's recipe; torch-free, so `llada train --help` and resuming checks stay light."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from llada_train.demo_data import TASK_WEIGHTS


@dataclass
class TrainConfig:
    steps: int = 6000
    batch_size: int = 32
    seq_len: int = 48
    answer_length: int = 8  # SFT answer region; written to sampler_defaults.json as gen_length
    block_length: int = 0  # sampler_defaults.json's block; 0: the whole answer is one block
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    pretrain_fraction: float = 0.1
    stop_weight: float = 1.0  # SFT loss weight of the end of turn that ends each answer
    suffix_share: float = 0.0  # share of SFT rows that also get a masked suffix (objective.py)
    multi_turn_share: float = 0.0  # share of SFT rows that are a later turn of a conversation
    max_turns: int = 6  # the longest conversation those rows come from
    seed: int = 0
    save_every: int = 250
    save_dtype: str = "bfloat16"
    threads: int = 0
    task_weights: dict = field(default_factory=lambda: dict(TASK_WEIGHTS))
    init_from: Optional[str] = None  # start from this trained folder instead of random weights
    model: dict = field(default_factory=lambda: {
        "d_model": 256, "n_layers": 4, "n_heads": 4, "mlp_hidden_size": 768, "bpe_vocab": 2048,
        # LLaDA 8B's 500000 leaves too few fast-turning RoPE frequencies for a 48-token
        # window: with it, add2 was 25 % after 1250 add2-only steps; with 10000, 85 %.
        "rope_theta": 10000.0,
    })
