"""The one vocabulary for an answer's statistics, used by every front end (the window's
messages and Inspector, `llada generate --json`, the server's `usage`, exports, animation
captions).

Words (and JSON keys):
- passes (NFE), key `nfe`: forward passes the sampler ran (CFG counts its second pass);
- step budget, key `step_budget`: the steps the settings allow; fast mode usually needs fewer,
  so it is always said as "of up to N", never as steps that were run;
- steps run, key `steps`: denoising steps taken (one per pass without CFG);
- tokens per pass, key `tokens_per_pass` (stored answers before this module: `tokens_per_nfe`);
- tokens/s, key `tokens_per_second`, and time, key `seconds`.

Stored stats of older answers lack some keys; every function here reads what is there.
"""

from __future__ import annotations

from typing import Any, Optional


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else ('es' if word.endswith('s') else 's')}"


def answer_stats(tokenizer: Any, tokens: list[int], mask_id: int, *, steps: int, nfe: int,
                 seconds: float, step_budget: Optional[int] = None) -> dict:
    """Speed over the visible answer (up to EOS or end of turn); the EOS padding after it, which
    the model also wrote, is counted apart."""
    from llada_core.chat import visible_answer_ids

    committed = [t for t in tokens if t != mask_id]
    visible = len(visible_answer_ids(tokenizer, committed))
    stats = {"steps": steps, "nfe": nfe, "seconds": round(seconds, 4), "tokens": visible,
             "padding": len(committed) - visible,
             "tokens_per_second": visible / seconds if seconds > 0 else 0.0,
             "tokens_per_pass": round(visible / nfe, 3) if nfe else 0.0}
    if step_budget is not None:
        stats["step_budget"] = int(step_budget)
    return stats


def tokens_per_pass(stats: dict) -> Optional[float]:
    value = stats.get("tokens_per_pass", stats.get("tokens_per_nfe"))
    return float(value) if value is not None else None


def passes_phrase(nfe: int, budget: Optional[int] = None, steps: Optional[int] = None) -> str:
    """'2 passes (NFE) of up to 64 steps'; `steps` (the steps taken) past the budget: LLaDA2.1's
    editing decoder passes over full blocks too."""
    text = f"{plural(nfe, 'pass')} (NFE)"
    if budget and steps is not None and steps > budget:
        text += f", {plural(budget, 'step')} set and editing passes"
    elif budget:
        text += f" of up to {plural(budget, 'step')}"
    return text


def stats_line(stats: dict) -> str:
    """One line for an answer's stored stats: '2 passes (NFE) of up to 64 steps, 23.50 tokens
    per pass, 1400.0 tokens/s, 0.03 s, 47 tokens + 17 padding, ...'."""
    from app.session.conversation import written_by

    parts = []
    if stats.get("stopped"):
        after = stats.get("steps", stats.get("nfe"))
        parts.append(f"stopped after pass {after}" if after is not None else "stopped")
    if "nfe" in stats:
        parts.append(passes_phrase(int(stats["nfe"]), stats.get("step_budget"), stats.get("steps")))
    elif "steps" in stats:  # very old stats
        parts.append(plural(int(stats["steps"]), "step"))
    per_pass = tokens_per_pass(stats)
    if per_pass is not None:
        parts.append(f"{per_pass:.2f} tokens/pass")
    if "tokens_per_second" in stats:
        parts.append(f"{stats['tokens_per_second']:.1f} tokens/s")
    if "seconds" in stats:
        parts.append(f"{stats['seconds']:.2f} s")
    if "tokens" in stats:
        padding = stats.get("padding")
        parts.append(plural(int(stats["tokens"]), "token")
                     + (f" + {padding} padding" if padding else ""))
    if stats.get("holes") is not None:
        parts.append(f"filled {plural(int(stats['holes']), 'hole')}")
    if stats.get("constraints"):
        parts.append(f"constraints {stats['constraints']}")
    if stats.get("backend"):
        parts.append(" ".join(filter(None, [stats["backend"], stats.get("dtype")])))
    written = written_by(stats)
    if written:
        parts.append(written)
    return ", ".join(parts)


def pass_caption(index: int, nfe: int, budget: int, block: Optional[int] = None,
                 blocks: Optional[int] = None) -> str:
    """One frame: 'pass 3 of up to 64 · block 1/2' (' · NFE 6' when CFG makes them differ).
    `index` is the 0-based step; the budget is never said as steps that ran."""
    text = (f"pass {index + 1} of up to {budget}" if index < budget
            else f"pass {index + 1} (editing, past the {budget} set)")
    if nfe and nfe != index + 1:
        text += f" · NFE {nfe}"
    if block is not None and blocks:
        text += f" · block {block + 1}/{blocks}"
    return text


def start_caption(budget: int, masked: Optional[int] = None, total: Optional[int] = None) -> str:
    """The frame before the first pass (the user's fixed words, if any, already in place)."""
    where = ("every position masked" if masked is None or masked == total
             else f"{masked} positions masked")
    return f"start · {where} · up to {plural(budget, 'pass')}"


def json_stats(*, nfe: int, steps: int, step_budget: int, seconds: float,
               tokens: Optional[int] = None) -> dict:
    """The stats keys of `llada generate --json` and the server's `llada` extras."""
    out = {"nfe": int(nfe), "steps": int(steps), "step_budget": int(step_budget),
           "seconds": round(seconds, 4)}
    if tokens is not None:
        out["tokens"] = int(tokens)
        out["tokens_per_pass"] = round(tokens / nfe, 3) if nfe else 0.0
        out["tokens_per_second"] = round(tokens / seconds, 1) if seconds > 0 else 0.0
    return out


def schedule_summary(settings: dict, block_diffusion: Optional[dict] = None) -> str:
    """The settings panel's line: what the schedule means, said in passes, per mode.
    `block_diffusion`: the loaded model is LLaDA 2.x (app.session.model.LoadedModel's)."""
    gen, block, steps = settings["gen_length"], settings["block_length"], settings["steps"]
    blocks = max(1, gen // block)
    if block_diffusion is not None:
        return block_summary(settings, blocks, block_diffusion.get("editing_threshold"))
    if settings.get("mode") != "fast":
        per_pass = gen / steps
        return (f"Exact: {plural(blocks, 'block')} of {block} tokens, {steps // blocks} passes "
                f"each, {plural(steps, 'pass')} in all ({per_pass:.2g} "
                f"token{'' if per_pass == 1 else 's'} unmasked per pass), as the reference "
                f"sampler; the canvas shows every pass.")
    text = (f"Fast: {plural(blocks, 'block')} of {block} tokens, up to {steps // blocks} passes "
            f"each (a step budget of {steps}); KV cache per block, stops at EOS")
    if settings.get("threshold") is not None:
        text += (f"; every token at least {settings['threshold']:.2f} confident is committed "
                 f"at once (at least one per pass), so an easy answer takes few passes.")
    else:
        text += "; fixed steps."
    return text


def block_summary(settings: dict, blocks: int, editing: Optional[float]) -> str:
    """LLaDA 2.x's decoder in words: blocks one after another, threshold commits, 2.1's edits."""
    block, steps = settings["block_length"], settings["steps"]
    threshold = settings.get("threshold")
    text = (f"Block diffusion (LLaDA 2.x): {plural(blocks, 'block')} of {block} tokens, each "
            "finished before the next starts; ")
    if editing is None:
        text += (f"up to {max(1, steps // blocks)} passes a block, each committing every mask at "
                 f"least {threshold if threshold is not None else 1.0:.2f} confident (else the "
                 "schedule's count); stops after the block that holds the end.")
    else:
        text += (f"each pass commits the masks at least {threshold if threshold is not None else 1.0:.2f} "
                 f"confident (at least one) and rewrites a written token where the model now "
                 f"predicts another at least {editing:.2f} confident (purple on the canvas), "
                 "until a pass changes nothing.")
    return text
