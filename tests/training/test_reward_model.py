"""`grape reward-model` on a tiny random Llama with SmolLM2's tokenizer, whose pad token is its EOS: the reward is
read at the last real token (a hand forward pass), the ids are the whole text's, a few steps learn, and
`grape decode` reads the saved model with the template it was trained with."""

from __future__ import annotations

import pytest
import torch
import yaml
from datasets import Dataset
from tiny_models import tiny_llama
from transformers import AutoTokenizer
from trl.trainer.reward_trainer import DataCollatorForPreference

from grape.cli import main
from grape.data.tables import write_rows, write_sidecar
from grape.decoding.reward import REWARD_SETTINGS, PlainRewardScorer, last_token_rewards, load_reward_model
from grape.errors import InputError
from grape.models.load import resolve_model_dir
from grape.text import Renderer
from grape.training.reward_model import DONE_NAME, SETTINGS_NAME, reward_model, tokenise_reward_pairs

# A preference a few steps can learn: the chosen answer agrees, the rejected one refuses.
PAIRS = [{"prompt": [{"role": "user", "content": f"Is {n} a number?"}], "chosen": [{"role": "assistant",
          "content": f"Yes, {n} is a number."}], "rejected": f"No idea about {n}."} for n in range(12)]  # fmt: skip
FAST = dict(lora_r=8, lr=3e-3, batch_size=4, logging_steps=1, device="cpu", template="chat")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the shared 2-core machine runs these small ops faster on one thread
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m-instruct")[0])
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # the case this file is about
    path = tmp_path_factory.mktemp("rm-base")
    tiny_llama(vocab_size=len(tokenizer), seed=0).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def trained(base_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("rm") / "model"
    return reward_model(PAIRS, out, model=str(base_dir), max_steps=24, **FAST), out


def test_the_trained_sequences_are_the_whole_texts_tokens(base_dir):
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    pairs = tokenise_reward_pairs(PAIRS[:2], Renderer(tokenizer, "chat"), 512, "pairs")
    for row, chosen, rejected in zip(PAIRS, pairs.chosen_ids, pairs.rejected_ids, strict=False):
        prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
        whole = tokenizer(prompt + row["chosen"][0]["content"] + "<|im_end|>", add_special_tokens=False)
        assert chosen == whole["input_ids"]
        assert rejected == tokenizer(prompt + row["rejected"] + "<|im_end|>", add_special_tokens=False)["input_ids"]
    paper = tokenise_reward_pairs(PAIRS[:1], Renderer(tokenizer, "paper"), 512, "pairs")
    text = "Question: Is 0 a number?\nAnswer: Yes, 0 is a number."
    assert paper.chosen_ids[0] == tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]


def test_the_reward_is_read_at_the_last_real_token(trained):
    result, _ = trained
    model, tokenizer = result.model, result.tokenizer
    pairs = tokenise_reward_pairs(PAIRS[:4], Renderer(tokenizer, "chat"), 512, "pairs")
    sequences = pairs.chosen_ids + pairs.rejected_ids
    assert all(s[-1] == tokenizer.eos_token_id for s in sequences)  # every sequence ends with <|im_end|> ...
    assert tokenizer.pad_token_id != tokenizer.eos_token_id == 2  # ... so the pad token had to be another one
    assert model.config.pad_token_id == tokenizer.pad_token_id
    batch = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id)(
        [{"chosen_ids": c, "rejected_ids": r} for c, r in zip(pairs.chosen_ids, pairs.rejected_ids, strict=True)]
    )
    assert len({len(s) for s in sequences}) > 1  # the batch is padded: rows of several lengths
    with torch.no_grad():
        trainer_view = model(**batch).logits.squeeze(-1)  # what the trainer's loss saw
        by_hand = torch.stack([model.score(model.model(input_ids=torch.tensor([s])).last_hidden_state[0, -1])
                               for s in sequences]).squeeze(-1)  # fmt: skip
        lengths = torch.tensor([len(s) for s in sequences])
        grape_view = last_token_rewards(model, batch["input_ids"], lengths)
        assert torch.allclose(trainer_view, by_hand, atol=1e-5)
        assert torch.allclose(grape_view, by_hand, atol=1e-5)
        model.config.pad_token_id = tokenizer.eos_token_id  # TRL's fallback pad = EOS would read one token early
        assert not torch.allclose(model(**batch).logits.squeeze(-1), by_hand, atol=1e-3)
        model.config.pad_token_id = tokenizer.pad_token_id


def test_a_few_steps_learn_the_preference_and_decode_reads_the_saved_model(trained):
    result, out = trained
    m = result.metrics
    assert m["steps"] == 24 and m["pairs"] == len(PAIRS)
    assert m["loss_last"] < m["loss_first"] - 0.2
    rm = load_reward_model(str(out), device="cpu")
    assert (rm.template, rm.eos) == ("chat", True) and REWARD_SETTINGS == SETTINGS_NAME
    scorer = PlainRewardScorer(rm)
    wins = 0
    for row in PAIRS:
        scorer.start(row["prompt"])
        chosen, rejected = scorer.score([row["chosen"][0]["content"], row["rejected"]], [True, True]).tolist()
        wins += chosen > rejected
    assert wins >= 10  # of 12
    assert (out / "README.md").is_file() and (out / "grape-reward-model.json").is_file()


def test_defaults_come_from_the_pairs_sidecar_and_flags_win_over_the_config(base_dir, tmp_path, heap_at_steps):
    pairs = write_rows(PAIRS[:4], tmp_path / "pairs.jsonl")
    write_sidecar(pairs, {"score_settings": {"model": str(base_dir), "template": "chat", "eos": True}})
    config = tmp_path / "rm.yaml"
    config.write_text(yaml.safe_dump({"max_steps": 5, "lora_r": 4, "batch_size": 2, "device": "cpu"}))
    out = tmp_path / "rm"
    assert main(["reward-model", str(pairs), "-o", str(out), "--config", str(config), "--max-steps", "1"]) == 0
    saved = yaml.safe_load((out / SETTINGS_NAME).read_text())
    assert (saved["model"], saved["template"], saved["eos"]) == (str(base_dir), "chat", True)
    assert (saved["max_steps"], saved["lora_r"], saved["lora_alpha"]) == (1, 4, 8)
    seen, switchable = heap_at_steps
    assert len(seen) == 1 and all(kept == switchable for kept in seen)  # on a CPU every step on a kept heap


def test_a_bad_pair_is_a_one_line_error_naming_file_row_and_field(base_dir, tmp_path, capsys):
    pairs = write_rows([PAIRS[0], {"prompt": "Hi", "chosen": "Hello"}], tmp_path / "pairs.jsonl")
    code = main(["reward-model", str(pairs), "-o", str(tmp_path / "rm"), "--model", str(base_dir), "--device", "cpu"])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert "pairs.jsonl, row 2, field 'rejected'" in error and len(error.splitlines()) == 1
    with pytest.raises(InputError, match=r"^pairs, row 1, field 'chosen': .* over max_length 8"):
        reward_model(Dataset.from_list(PAIRS), None, model=str(base_dir), max_length=8, **FAST)  # rows in memory


def test_a_resumed_run_equals_an_uninterrupted_one_and_other_settings_stop_it(base_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from grape.errors import GrapeError

    steady = dict(FAST, lr_scheduler="constant", save_steps=2, model=str(base_dir))  # lr independent of max_steps
    whole = reward_model(PAIRS, tmp_path / "whole", max_steps=4, **steady)
    assert whole.metrics["resumed_from"] is None
    assert sorted(p.name for p in (tmp_path / "whole" / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-2",
        "checkpoint-4",
    ]
    cut = tmp_path / "cut"
    reward_model(PAIRS, cut, max_steps=2, **steady)  # the "interrupted" run: stops after its checkpoint at step 2
    resumed = reward_model(PAIRS, cut, max_steps=4, **steady)
    assert resumed.metrics["resumed_from"] == str(cut / "checkpoints" / "checkpoint-2")
    assert resumed.metrics["steps"] == 4
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    # the equality is not that of a run started afresh: a resume from a checkpoint whose weights were moved ends
    # elsewhere (it read them)
    moved = tmp_path / "moved"
    reward_model(PAIRS, moved, max_steps=2, **steady)
    adapter = next((moved / "checkpoints" / "checkpoint-2").glob("adapter_model.safetensors"))
    save_file({k: v + 0.5 for k, v in load_file(adapter).items()}, adapter)
    elsewhere = reward_model(PAIRS, moved, max_steps=4, **steady)
    assert not torch.allclose(whole.model.score.weight, elsewhere.model.score.weight, atol=1e-3)
    with pytest.raises(GrapeError, match=r"other settings \(lr\); --resume to continue from checkpoint-4 anyway"):
        reward_model(PAIRS, cut, max_steps=6, **{**steady, "lr": 1e-3})
    afresh = reward_model(PAIRS, cut, max_steps=2, **{**steady, "lr": 1e-3}, resume=False)
    assert afresh.metrics["resumed_from"] is None
    assert [p.name for p in (cut / "checkpoints").glob("checkpoint-*")] == ["checkpoint-2"]


def test_a_finished_run_trains_nothing_and_writes_a_missing_model_from_its_last_checkpoint(base_dir, tmp_path, capsys):
    import json

    from safetensors.torch import load_file

    steady = dict(FAST, lr_scheduler="constant", save_steps=2, model=str(base_dir), max_steps=2)
    out = tmp_path / "model"
    first = reward_model(PAIRS, out, **steady)
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    again = reward_model(PAIRS, out, **steady)
    assert again.metrics == json.loads(files[DONE_NAME])["metrics"] and again.metrics["steps"] == 2
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files  # left as they are
    assert "already finished" in capsys.readouterr().err
    for name in ("model.safetensors", "config.json", DONE_NAME):  # killed between the last checkpoint and the save
        (out / name).unlink()
    written = reward_model(PAIRS, out, **steady)
    assert written.metrics["steps"] == 2 and written.metrics["resumed_from"].endswith("checkpoint-2")
    assert [p.name for p in (out / "checkpoints").glob("checkpoint-*")] == ["checkpoint-2"]
    saved, trained = load_file(out / "model.safetensors"), first.model.state_dict()
    assert saved.keys() == trained.keys() and all(torch.equal(saved[k], trained[k]) for k in saved)


def test_gradient_checkpointing_recomputes_and_trains_the_same_model(base_dir, tmp_path, monkeypatch):
    """`--gradient-checkpointing` (a flag of every training command) reaches the model, and recomputing the
    activations changes no weight beyond float rounding."""
    import transformers.modeling_utils as modeling

    calls, real = [], modeling.checkpoint
    monkeypatch.setattr(modeling, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    plain = reward_model(PAIRS, None, model=str(base_dir), max_steps=3, **FAST)
    assert calls == []
    pairs = write_rows(PAIRS, tmp_path / "pairs.jsonl")
    flags = ["--model", str(base_dir), "--template", "chat", "--lora-r", "8", "--lr", "3e-3", "--batch-size", "4",
             "--max-steps", "3", "--device", "cpu"]  # fmt: skip
    assert main(["reward-model", str(pairs), "-o", str(tmp_path / "rm"), *flags, "--gradient-checkpointing"]) == 0
    assert calls  # every layer's forward went through the checkpoint
    assert yaml.safe_load((tmp_path / "rm" / SETTINGS_NAME).read_text())["gradient_checkpointing"] is True
    checkpointed = load_reward_model(str(tmp_path / "rm"), device="cpu").model
    for (name, a), b in zip(plain.model.state_dict().items(), checkpointed.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name
