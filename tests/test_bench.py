"""The sampler benchmark measures what it says, on the tiny model."""

import json

import pytest

pytest.importorskip("torch")

import llada_torch  # noqa: E402
from app.bench import VARIANTS, benchmark, format_table, parameter_count, random_prompts
from test_cli import llada


def test_benchmark_reports_every_variant(tiny_torch):
    model, tokenizer = tiny_torch
    prompts = random_prompts(tokenizer, 2, 8)
    special = set(tokenizer.all_special_ids)
    assert all(len(p) == 8 and not special & set(p) for p in prompts)
    sampler = {"gen_length": 32, "block_length": 8, "steps": 32}
    results = benchmark(llada_torch, model, prompts, sampler, list(VARIANTS))
    by_name = {r.variant: r for r in results}
    assert list(by_name) == list(VARIANTS)
    exact = by_name["exact"]
    assert exact.nfe == 64 and exact.tokens_per_nfe == 1.0 and exact.speedup == 1.0 and exact.agreement == 1.0
    assert by_name["dual cache"].nfe == 64  # the same steps, cheaper passes
    assert by_name["early stop"].nfe <= 64
    assert all(r.seconds > 0 and r.ms_per_nfe > 0 for r in results)
    table = format_table(results)
    assert "dual cache" in table and "speed-up" in table


def test_parameter_count_matches_the_model(tiny_checkpoint, tiny_torch):
    total, head = parameter_count(tiny_checkpoint)
    model, _ = tiny_torch
    assert total == sum(p.numel() for p in model.parameters())
    assert head == model.model.transformer["ff_out"].weight.numel()


def test_bench_command_json(tiny_checkpoint):
    result = llada("bench", "--model", str(tiny_checkpoint), "--gen-length", "16", "--block-length", "8",
                   "--prompt-length", "4", "--variants", "exact,dual cache", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["variant"] for r in report["results"]] == ["exact", "dual cache"]
    assert report["results"][0]["nfe"] == 16


def test_a_judge_scores_each_variant(tiny_torch):
    model, tokenizer = tiny_torch
    prompts = random_prompts(tokenizer, 2, 6)
    sampler = {"gen_length": 16, "block_length": 8, "steps": 16}
    seen = []

    def judge(answers):
        seen.append(answers)
        return 0.5

    results = benchmark(llada_torch, model, prompts, sampler, ["exact", "dual cache"], judge=judge)
    assert [r.accuracy for r in results] == [0.5, 0.5]
    assert len(seen) == 2 and all(len(answers) == 2 and len(answers[0]) == 16 for answers in seen)
    assert "accuracy" in format_table(results)


def test_bench_on_the_demo_tasks(tiny_checkpoint):
    result = llada("bench", "--model", str(tiny_checkpoint), "--task", "demo", "--task-items", "1",
                   "--gen-length", "16", "--block-length", "16", "--variants", "exact", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    accuracy = report["results"][0]["accuracy"]
    assert 0.0 <= accuracy <= 1.0  # a random model answers (almost) nothing right
