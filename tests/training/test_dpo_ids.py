"""grape dpo trains on exactly the ids grape renders: what TRL's collators hand the model (DPO and SimPO) equals the
Renderer's whole-text ids of prompt + response, and the tokens that carry log-probs are the scorer's response ids.
Also: the TRL 1.16 interfaces the trainers override, and one-line errors for bad pairs rows."""

from __future__ import annotations

import inspect
import types

import pytest
import torch
from dpo_pairs import PAIRS, texts
from trl import DPOConfig, DPOTrainer
from trl.experimental.cpo import CPOConfig, CPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from grape.errors import InputError
from grape.text import Renderer
from grape.training.dpo import _trainer
from grape.training.preference import read_pairs, tokenise_pairs
from grape.training.preference_trainers import dpo_dataset, simpo_dataset
from grape.training.settings import DPOSettings

CPU = dict(use_cpu=True, bf16=False, activation_checkpointing=False)  # TRL's defaults: bf16 (a CPU refuses it)
RESOLVED = dict(beta=0.1, lr=1e-3, precision="fp32", max_length=512, batch_size=len(PAIRS), seed=0)


def _expected(renderer: Renderer) -> dict[tuple[int, ...], tuple[list[int], list[int]]]:
    """Each response's whole-text ids -> (those ids, 1 where the renderer puts a response token), from encode."""
    out = {}
    for row in PAIRS:
        prompt, *responses = texts(row)
        for ids in renderer.encode(prompt, responses):
            whole = ids.prompt + ids.response
            out[tuple(whole)] = (whole, [0] * len(ids.prompt) + [1] * len(ids.response))
    return out


@pytest.mark.parametrize(("model", "template"), [("base", "paper"), ("smol_base", "chat")])
def test_the_dpo_collator_gives_the_rendered_ids_and_scores_only_the_response(request, tmp_path, model, template):
    base = request.getfixturevalue(model)  # Gemma's base tokenizer has no chat template; SmolLM2's has one
    renderer = Renderer(base.tokenizer, template)
    pairs = tokenise_pairs(read_pairs(PAIRS), renderer, 512)
    if template == "paper":  # the boundary case is really exercised: ` ` + `2` vs ` The`
        assert (pairs[0].chosen_prompt_tail, pairs[0].rejected_prompt_tail) == (1, 0)
    dataset = dpo_dataset(pairs, [0.0] * len(pairs), [0.0] * len(pairs))
    settings = DPOSettings(template=template, **RESOLVED)
    trainer = _trainer(base, dataset, settings, torch.device("cpu"), None, tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    expected, n = _expected(renderer), len(PAIRS)
    seen = set()
    for row in range(2 * n):
        kept = batch["attention_mask"][row].bool()
        ids = batch["input_ids"][row][kept].tolist()
        whole, response = expected[tuple(ids)]  # a KeyError here: ids that no rendering gives
        assert batch["completion_mask"][row][kept].tolist() == response
        seen.add(tuple(whole))
    assert seen == set(expected)  # every chosen and rejected sequence, each once


def test_the_simpo_collator_gives_the_rendered_ids_and_labels_only_the_response(base, tmp_path):
    renderer = Renderer(base.tokenizer, "paper")
    pairs = tokenise_pairs(read_pairs(PAIRS), renderer, 512)
    settings = DPOSettings(loss="simpo", template="paper", **{**RESOLVED, "beta": 2.0})
    trainer = _trainer(base, simpo_dataset(pairs), settings, torch.device("cpu"), None, tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    expected, seen = _expected(renderer), set()
    for side in ("chosen", "rejected"):
        for row in range(len(PAIRS)):
            kept = batch[f"{side}_attention_mask"][row].bool()
            ids = batch[f"{side}_input_ids"][row][kept].tolist()
            whole, response = expected[tuple(ids)]
            labels = batch[f"{side}_labels"][row][kept].tolist()
            assert labels == [t if r else -100 for t, r in zip(whole, response, strict=True)]
            seen.add(tuple(whole))
    assert seen == set(expected)


def test_trl_would_train_on_the_raw_prompt_not_the_rendered_one(base, tmp_path):
    """Why the trainers override TRL's preparation: DPOTrainer tokenises the row's own text (no template)."""
    row = {"prompt": PAIRS[1]["prompt"], "chosen": PAIRS[1]["chosen"], "rejected": PAIRS[1]["rejected"]}
    from datasets import Dataset

    fake = types.SimpleNamespace(_tokenizer=base.tokenizer)
    config = DPOConfig(str(tmp_path), **CPU)
    prepared = DPOTrainer._prepare_dataset(fake, Dataset.from_list([row]), base.tokenizer, config, "train")
    theirs = prepared[0]["prompt_ids"] + prepared[0]["chosen_ids"]
    ours = tokenise_pairs(read_pairs([row]), Renderer(base.tokenizer, "paper"), 512)[0]
    assert theirs != ours.prompt_ids + ours.chosen_ids
    assert base.tokenizer.decode(ours.prompt_ids).endswith("Question: Name a primary colour.\nAnswer:")
    assert "Question:" not in base.tokenizer.decode(theirs)


def test_the_trl_interfaces_grape_overrides_are_as_pinned(tmp_path):
    """TRL 1.16: the methods the subclasses replace, and the collator fields they rebuild, have these shapes."""
    params = lambda f: list(inspect.signature(f).parameters)  # noqa: E731
    assert params(DPOTrainer._prepare_dataset) == ["self", "dataset", "processing_class", "args", "dataset_name"]
    assert params(DPOTrainer._precompute_ref_logps) == ["self", "dataset", "name", "batch_size"]
    assert params(CPOTrainer.tokenize_row) == ["self", "feature", "model"]
    assert params(DataCollatorForPreference) == ["pad_token_id", "max_length", "truncation_mode", "pad_to_multiple_of",
                                                 "return_tensors"]  # fmt: skip
    source = inspect.getsource(DPOTrainer._compute_loss)
    assert 'inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]' in source  # read when precomputed
    assert DPOConfig(str(tmp_path), precompute_ref_log_probs=True, **CPU).precompute_ref_log_probs
    config = CPOConfig(str(tmp_path), loss_type="simpo", simpo_gamma=0.7, cpo_alpha=0.0, **CPU)
    assert (config.loss_type, config.simpo_gamma, config.cpo_alpha) == ("simpo", 0.7, 0.0)


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ({"prompt": "Q?", "chosen": "A."}, "rejected", "missing"),
        ({"chosen": "A.", "rejected": "B."}, "prompt", "missing"),
        ({"prompt": "Q?", "chosen": "", "rejected": "B."}, "chosen", "non-empty string"),
        ({"prompt": "Q?", "chosen": [{"role": "user", "content": "A."}], "rejected": "B."}, "chosen", "assistant"),
        ({"prompt": 3, "chosen": "A.", "rejected": "B."}, "prompt", "string or a list"),
    ],
)
def test_a_bad_row_is_an_error_naming_file_row_and_field(row, field, reason):
    with pytest.raises(InputError, match=reason) as caught:
        read_pairs([PAIRS[0], row], "pairs.jsonl")
    assert (caught.value.file, caught.value.row, caught.value.field) == ("pairs.jsonl", 2, field)


def test_a_pair_over_max_length_is_an_error_never_cut(base):
    with pytest.raises(InputError, match=r"pairs, row 1, field 'chosen': prompt \+ chosen is \d+ tokens, over"):
        tokenise_pairs(read_pairs(PAIRS[:1]), Renderer(base.tokenizer, "paper"), 12)


def test_pairs_with_one_text_as_chosen_and_rejected_are_kept_and_said(capsys):
    same = {"prompt": "Q?", "chosen": "A.", "rejected": "A."}
    texts = read_pairs([PAIRS[0], same, same], "pairs.jsonl")
    assert len(texts) == 3 and texts[1] == ("Q?", "A.", "A.")
    said = " ".join(capsys.readouterr().err.split())
    assert "pairs.jsonl: 2 of 3 pairs have the same chosen and rejected text (rows 2, 3): they teach nothing" in said
