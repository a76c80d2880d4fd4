"""Continuous batching (grape.generation.continuous) answers every prompt as transformers' generate answers it
alone: compared in float64 on a tiny random Llama, so that a different batch cannot flip a greedy choice by
rounding; prompts of different lengths in both orders (a later, longer prompt widens the shared cache)."""

from __future__ import annotations

import pytest
import torch

from grape.data.tables import write_rows
from grape.errors import GrapeError
from grape.evaluation.evaluate import evaluate
from grape.generation.backend import Sampling
from grape.generation.continuous import continuous_greedy, supports_continuous
from grape.generation.generate import generate, open_backend
from grape.generation.hf_backend import HFBackend
from grape.generation.settings import GenerateSettings
from grape.generation.work import generator_specs
from grape.models.load import LoadedModel, load_model


@pytest.fixture(scope="module")
def smol64(tiny_smol_dir):
    loaded = load_model(str(tiny_smol_dir), "float32", "cpu")
    return LoadedModel(loaded.model.double(), loaded.tokenizer, loaded.identity)


def alone(model, prompt: list[int], max_new_tokens: int, eos: int | None) -> list[int]:
    """transformers' greedy answer to one prompt, without its EOS."""
    with torch.inference_mode():
        ids, mask = torch.tensor([prompt]), torch.ones(1, len(prompt), dtype=torch.long)
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=eos, pad_token_id=0)[0, len(prompt):].tolist()  # fmt: skip
    return out[: out.index(eos)] if eos in out else out


def prompts_of(lengths: list[int]) -> list[list[int]]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randint(5, 1000, (n,), generator=generator).tolist() for n in lengths]


@pytest.mark.parametrize("order", ["longest first", "shortest first"])
@pytest.mark.parametrize("slots", [1, 3, 16])
def test_each_answer_is_the_one_generate_gives_the_prompt_alone(smol64, order, slots):
    lengths = [3, 9, 5, 14, 1, 7, 11]
    prompts = prompts_of(sorted(lengths, reverse=order == "longest first"))
    model = smol64.model
    expected = [alone(model, p, 10, None) for p in prompts]
    got = {i: (tokens, reason) for i, tokens, reason in continuous_greedy(model, prompts, 10, set(), 0, slots)}
    assert [got[i][0] for i in range(len(prompts))] == expected
    assert all(reason == "length" for _, reason in got.values())


def test_answers_end_at_eos_and_free_their_slot(smol64):
    model = smol64.model
    prompts = prompts_of([4, 8, 6, 10, 2, 5])
    free = [alone(model, p, 12, None) for p in prompts]
    eos = max({t for answer in free for t in answer[1:6]}, key=lambda t: sum(t in a[:6] for a in free))  # a common one
    expected = [alone(model, p, 12, eos) for p in prompts]
    assert any(len(e) < 12 for e in expected)  # some answers do stop early
    got = {i: (tokens, reason) for i, tokens, reason in continuous_greedy(model, prompts, 12, {eos}, 0, 2)}
    assert [got[i][0] for i in range(len(prompts))] == expected
    assert [got[i][1] for i in range(len(prompts))] == ["stop" if len(e) < 12 else "length" for e in expected]


def test_a_stop_rule_ends_an_answer_where_it_first_holds(smol64):
    prompts = prompts_of([5, 7, 3])
    expected = [alone(smol64.model, p, 9, None) for p in prompts]
    got = dict((i, t) for i, t, _ in continuous_greedy(smol64.model, prompts, 9, set(), 0, 2, lambda t: len(t) >= 4))
    assert [got[i] for i in range(3)] == [e[:4] for e in expected]


def test_grape_eval_gives_the_same_rows_with_either_batching(smol64, tmp_path):
    items = [{"id": f"q{i}", "prompt": "What is " + " + ".join(["1"] * (i + 1)) + "?", "answer": str(i + 1)}
             for i in range(6)]  # fmt: skip
    data = write_rows(items, tmp_path / "items.jsonl")
    assert supports_continuous(smol64.model)
    runs = [evaluate(data, None, loaded=smol64, template="chat", max_new_tokens=8, batch_size=4, batching=b,
                     verifier="number")[0] for b in ("static", "continuous")]  # fmt: skip
    assert runs[0] == runs[1]


def test_sliding_window_models_stay_in_static_batches(tiny_model_dir):
    gemma = load_model(str(tiny_model_dir), "float32", "cpu").model
    assert not supports_continuous(gemma)


def test_a_longer_prompt_entering_a_running_batch_widens_the_cache(smol64):
    """Prompt 0's first token is made its EOS, so it leaves at once while prompt 1 runs on, and prompt 2 (12
    tokens, longer than prompt 1's cache) takes its slot: every running row is padded on the left."""
    model = smol64.model
    prompts = prompts_of([2, 3, 12, 4])
    eos = alone(model, prompts[0], 1, None)[0]
    expected = [alone(model, p, 10, eos) for p in prompts]
    assert expected[0] == [] and len(expected[1]) > 2  # the premise: 0 leaves first, 1 is still running
    order = [(i, t) for i, t, _ in continuous_greedy(model, prompts, 10, {eos}, 0, 2)]
    assert order[0] == (0, []) and dict(order) == dict(enumerate(expected))


def test_grape_generate_gives_the_same_greedy_rows_with_either_batching(smol64, tmp_path):
    items = [{"id": f"q{i}", "prompt": "Count: " + " ".join(["one"] * (2 * i + 1))} for i in range(6)]
    data = write_rows(items, tmp_path / "items.jsonl")
    sampling = Sampling(n=1, temperature=0.0, max_new_tokens=8)
    runs = []
    for batching in ("static", "continuous"):
        backend = HFBackend(smol64, "chat", batch_size=4, batching=batching)
        assert backend.continuous == (batching == "continuous")
        rows, (report,) = generate(data, tmp_path / f"{batching}.jsonl", models=["m=unused"], sampling=sampling,
                                   backends={"m": backend})  # fmt: skip
        assert (report.generated, report.failed) == (6, 0)
        runs.append([(r["id"], [(c["text"], c["n_tokens"]) for c in r["candidates"]]) for r in rows])
    assert runs[0] == runs[1]


def test_generate_passes_its_batching_to_the_backend_and_refuses_an_unknown_one(tiny_smol_dir, tmp_path):
    (spec,) = generator_specs(GenerateSettings(models=[str(tiny_smol_dir)]))
    for batching, continuous in (("static", False), ("continuous", True), ("auto", True)):  # auto: CPU, full attention
        backend = open_backend(spec, GenerateSettings(batching=batching, dtype="float32", device="cpu"))
        assert backend.continuous is continuous
    data = write_rows([{"id": "a", "prompt": "hi"}], tmp_path / "in.jsonl")
    with pytest.raises(GrapeError, match="batching 'dynamic': use one of auto, static, continuous"):
        generate(data, tmp_path / "out.jsonl", models=[str(tiny_smol_dir)], batching="dynamic")
    assert not (tmp_path / "out.jsonl").exists()
    with pytest.raises(GrapeError, match="batching 'dynamic'"):
        HFBackend(str(tiny_smol_dir), batching="dynamic")
