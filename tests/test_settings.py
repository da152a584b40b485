"""Schedule arithmetic and every ValueError path of the sampler settings."""

import math

import pytest

from llada_core.settings import SamplerSettings, checked_prompt_ids, transfer_schedule


@pytest.mark.parametrize(
    "masked, steps, expected",
    [
        (32, 32, [1] * 32),
        (32, 16, [2] * 16),
        (32, 10, [4, 4, 3, 3, 3, 3, 3, 3, 3, 3]),
        (5, 5, [1] * 5),
        (7, 3, [3, 2, 2]),
        (0, 4, [0, 0, 0, 0]),
    ],
)
def test_transfer_schedule(masked, steps, expected):
    assert transfer_schedule(masked, steps) == expected
    assert sum(transfer_schedule(masked, steps)) == masked


def test_defaults_match_reference_chat():
    s = SamplerSettings()
    assert (s.gen_length, s.steps, s.block_length) == (128, 128, 32)
    assert s.num_blocks == 4 and s.steps_per_block == 32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"gen_length": 64, "block_length": 24, "steps": 64}, "block length 24 does not divide answer length 64"),
        ({"gen_length": 128, "block_length": 32, "steps": 30}, "steps 30 is not a multiple of the number of blocks (4"),
        ({"gen_length": 32, "block_length": 32, "steps": 64}, "steps 64 is more than the answer length 32"),
        ({"gen_length": 0}, "answer length must be at least 1"),
        ({"gen_length": 16.0}, "answer length must be a whole number"),
        ({"block_length": -4}, "block length must be at least 1"),
        ({"steps": True}, "steps must be a whole number"),
        ({"temperature": -0.1}, "temperature must be a number from 0 to 2"),
        ({"temperature": math.nan}, "temperature must be a number from 0 to 2"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"cfg_scale": -1.0}, "CFG scale must be a number from 0 to 10"),
        ({"cfg_scale": math.inf}, "CFG scale must be a number from 0 to 10"),
        ({"remasking": "greedy"}, "remasking 'greedy' is unknown"),
        ({"mode": "turbo"}, "mode 'turbo' is unknown"),
        ({"seed": -1}, "seed must be a whole number from 0 to"),
        ({"seed": 1.5}, "seed must be a whole number from 0 to"),
        ({"seed": 2**63}, "seed must be a whole number from 0 to 9223372036854775807"),
        ({"temperature": 1e308}, "temperature must be a number from 0 to 2, not 1e+308"),
        ({"temperature": 2.5}, "temperature must be a number from 0 to 2"),
        ({"cfg_scale": 1e37}, "CFG scale must be a number from 0 to 10, not 1e+37"),
    ],
)
def test_invalid_settings_explain_themselves(kwargs, message):
    with pytest.raises(ValueError) as error:
        SamplerSettings(**kwargs)
    assert message in str(error.value)


def test_prompt_ids_are_checked_against_the_vocabulary():
    assert checked_prompt_ids([0, 5, 9], vocab_size=10) == [0, 5, 9]
    for bad, shown in [([3, 10], "10 at position 1"), ([-1], "-1 at position 0"),
                       ([2.5], "2.5 at position 0"), ([True], "True at position 0")]:
        with pytest.raises(ValueError, match="the model has ids 0 to 9") as error:
            checked_prompt_ids(bad, vocab_size=10)
        assert shown in str(error.value)


# --- the command line's sampler defaults (issue 13: fast by default, exact one flag away) ------

def _resolved(*argv: str):
    from app.cli import build_parser
    from app.cli.options import resolve_model

    args = build_parser().parse_args(list(argv))
    resolve_model(args)
    return args


@pytest.mark.parametrize("command", ["generate", "chat"])
def test_fast_is_the_command_line_default_and_exact_is_one_flag_away(tmp_path, command):
    extra = ["--prompt", "hi"] if command == "generate" else []
    args = _resolved(command, "--model", str(tmp_path), *extra)
    assert (args.mode, args.threshold, args.cache, args.early_stop) == ("fast", 0.9, "dual", True)
    assert args.factor is None
    args = _resolved(command, "--model", str(tmp_path), *extra, "--mode", "exact")
    assert args.mode == "exact"


def test_a_model_folder_picks_its_mode_and_threshold_unless_the_user_did(tmp_path):
    import json

    from app.cli.options import sampler_kwargs
    from llada_core.checkpoint import SAMPLER_DEFAULTS_FILE

    (tmp_path / SAMPLER_DEFAULTS_FILE).write_text(json.dumps(
        {"gen_length": 8, "block_length": 8, "steps": 8, "mode": "exact", "threshold": 0.8}))
    args = _resolved("generate", "--prompt", "hi", "--model", str(tmp_path))
    assert (args.mode, args.threshold, args.gen_length) == ("exact", 0.8, 8)
    args = _resolved("generate", "--prompt", "hi", "--model", str(tmp_path), "--mode", "fast",
                     "--threshold", "none")
    assert (args.mode, args.threshold) == ("fast", None)
    assert {"mode", "threshold"} <= args.lengths_given  # the window keeps what the user gave
    assert sampler_kwargs(args)["mode"] == "fast"
    SamplerSettings(**sampler_kwargs(args))  # what the command line resolves is valid
    (tmp_path / SAMPLER_DEFAULTS_FILE).write_text(json.dumps({"mode": "turbo", "threshold": 7}))
    args = _resolved("generate", "--prompt", "hi", "--model", str(tmp_path))
    assert (args.mode, args.threshold) == ("fast", 0.9)  # nonsense in the folder is ignored


def test_factor_flag(tmp_path):
    args = _resolved("generate", "--prompt", "hi", "--model", str(tmp_path), "--factor", "1.5")
    assert args.factor == 1.5
    assert SamplerSettings(mode="fast", factor=args.factor).factor == 1.5


def test_an_answer_length_alone_keeps_a_valid_schedule_at_the_models_pace(tmp_path):
    import json

    from llada_core.checkpoint import SAMPLER_DEFAULTS_FILE

    (tmp_path / SAMPLER_DEFAULTS_FILE).write_text(json.dumps(
        {"gen_length": 8, "block_length": 8, "steps": 8}))
    args = _resolved("generate", "--prompt", "hi", "--model", str(tmp_path), "--gen-length", "12")
    assert (args.gen_length, args.block_length, args.steps) == (12, 12, 12)
    args = _resolved("generate", "--prompt", "hi", "--model", str(tmp_path), "--gen-length", "64")
    assert (args.gen_length, args.block_length, args.steps) == (64, 32, 64)
    # a block length the user gave is theirs to get right
    with pytest.raises(ValueError, match="does not divide"):
        args = _resolved("generate", "--prompt", "hi", "--model", str(tmp_path),
                         "--gen-length", "12", "--block-length", "8")
        SamplerSettings(**__import__("app.cli.options", fromlist=["x"]).sampler_kwargs(args))


def test_help_shows_the_demo_lengths_in_force():
    from app.cli import build_parser

    from app.models.catalog import bundled_demo_model
    from app.models.defaults import sampler_defaults

    length = sampler_defaults(str(bundled_demo_model()))["gen_length"]
    text = build_parser()._subparsers._group_actions[0].choices["generate"].format_help()
    assert f"the bundled demo: {length}" in " ".join(text.split())
