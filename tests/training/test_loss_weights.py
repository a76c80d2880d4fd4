"""A selection row's loss_weights (one per response token): read for a weighted objective, ignored by nll,
bad ones a one-line error naming file, row and field; the --loss setting from flags and config files."""

from __future__ import annotations

import pytest

from grape.cli import build_parser
from grape.config import load_settings
from grape.errors import GrapeError, InputError
from grape.text import Renderer
from grape.training.cli import settings_from_args
from grape.training.dataset import to_dataset, tokenise_examples
from grape.training.settings import SFTSettings, check

ROW = {"prompt": "What is 2 + 3?", "completion": "The answer is 5."}


@pytest.fixture(scope="module")
def renderer(gemma) -> Renderer:
    return Renderer(gemma.tokenizer, "paper")


def response_length(renderer: Renderer) -> int:
    return len(renderer.encode(ROW["prompt"], [ROW["completion"]])[0].response)


def test_weights_sit_on_the_response_tokens_and_default_to_one(renderer):
    n = response_length(renderer)
    plain, given = tokenise_examples([ROW, {**ROW, "loss_weights": list(range(n))}], renderer, 512, weighted=True)
    prompt = len(plain.input_ids) - n
    assert plain.loss_weights == [0.0] * prompt + [1.0] * n
    assert given.loss_weights == [0.0] * prompt + [float(i) for i in range(n)]
    assert [w > 0 for w in plain.loss_weights] == [m == 1 for m in plain.completion_mask]
    assert to_dataset([plain, given]).column_names == ["input_ids", "completion_mask", "loss_weights"]


def test_nll_ignores_the_weights(renderer):
    (example,) = tokenise_examples([{**ROW, "loss_weights": "anything"}], renderer, 512)
    assert example.loss_weights is None
    assert to_dataset([example]).column_names == ["input_ids", "completion_mask"]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ("heavy", "expected a list of numbers"),
        ([1, True], "expected a list of numbers"),
        ([1.0], r"1 weights for \d+ response tokens \(the end marker included\)"),
        ("negative", "weight 2 is -1.0: expected a finite value >= 0"),
        ("nan", "weight 0 is nan"),
    ],
)
def test_bad_weights_are_one_line_errors_naming_the_row_and_field(renderer, weights, message):
    n = response_length(renderer)
    if weights == "negative":
        weights = [1.0, 1.0, -1.0] + [1.0] * (n - 3)
    elif weights == "nan":
        weights = [float("nan")] + [1.0] * (n - 1)
    rows = [ROW, {**ROW, "loss_weights": weights}]
    with pytest.raises(InputError, match=rf"sel.jsonl, row 2, field 'loss_weights': {message}"):
        tokenise_examples(rows, renderer, 512, "sel.jsonl", weighted=True)


def test_loss_flag_and_config(tmp_path):
    args = build_parser().parse_args(["sft", "selected.jsonl", "-o", "out", "--loss", "weighted"])
    assert settings_from_args(args).loss == "weighted"
    assert settings_from_args(build_parser().parse_args(["sft", "s.jsonl", "-o", "out"])).loss == "nll"
    with pytest.raises(SystemExit):  # argparse: not one of the objectives
        build_parser().parse_args(["sft", "s.jsonl", "-o", "out", "--loss", "dpo"])
    config = tmp_path / "sft.yaml"
    config.write_text("loss: weighted-token\n")
    assert load_settings(SFTSettings, config).loss == "weighted-token"
    config.write_text("loss: weigthed\n")
    with pytest.raises(GrapeError, match="unknown loss 'weigthed': use one of nll, weighted, weighted-token"):
        check(load_settings(SFTSettings, config))
