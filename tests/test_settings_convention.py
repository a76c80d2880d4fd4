"""One settings convention for every stage: defaults < --config YAML < flags; unknown names refused."""

import pytest
import yaml

from grape.cli import build_parser, main
from grape.config import load_settings, with_overrides
from grape.data.tables import read_sidecar, write_rows
from grape.errors import GrapeError
from grape.generation.cli import generate_settings
from grape.scoring.cli import score_settings
from grape.scoring.settings import EngineSettings, ScoreSettings
from grape.selection.settings import SelectSettings
from grape.verification.verify import verify


def test_with_overrides_applies_known_names_and_refuses_a_typo():
    assert with_overrides(SelectSettings, None, {"strategy": "lowest"}).strategy == "lowest"
    base = SelectSettings(seed=3)
    assert with_overrides(SelectSettings, base, {}).seed == 3 and base.strategy == "grape"
    with pytest.raises(GrapeError, match=r"stratgy \(did you mean strategy\?\)"):
        with_overrides(SelectSettings, None, {"stratgy": "lowest"})
    with pytest.raises(GrapeError, match="must be a SelectSettings"):
        with_overrides(SelectSettings, ScoreSettings(), {})


def test_a_nested_flag_updates_the_config_files_mapping(tmp_path):
    config = tmp_path / "score.yaml"
    engine = {"batch_tokens": 512, "max_row_tokens": 128, "host_heap": "system"}
    config.write_text(yaml.safe_dump({"template": "raw", "engine": engine}))
    settings = load_settings(ScoreSettings, config, {"engine": {"batch_tokens": 1024}, "template": None})
    assert settings.template == "raw"  # a flag not given (None) keeps the file's value
    assert settings.engine == EngineSettings(batch_tokens=1024, max_row_tokens=128, host_heap="system")


def test_a_value_a_settings_class_refuses_is_a_one_line_error_naming_the_file(tmp_path):
    config = tmp_path / "score.yaml"
    config.write_text(yaml.safe_dump({"engine": {"attention": "flash"}}))
    with pytest.raises(GrapeError, match=r"score.yaml.*attention must be one of segments, .*varlen, not 'flash'"):
        load_settings(ScoreSettings, config)


def test_score_and_generate_flags_win_over_their_config_files(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model": "smollm2-135m-instruct", "eos": False, "engine": {"compile": True}}))
    args = build_parser().parse_args(["score", "in.jsonl", "-o", "o.parquet", "--config", str(config),
                                      "--batch-tokens", "64", "--dtype", "bf16", "--kernels", "torch"])  # fmt: skip
    settings = score_settings(args)
    assert (settings.model, settings.eos, settings.dtype) == ("smollm2-135m-instruct", False, "bf16")
    assert settings.engine == EngineSettings(batch_tokens=64, compile=True, kernels="torch")
    config.write_text(yaml.safe_dump({"models": ["gemma-3-270m"], "sampling": {"n": 3, "temperature": 0.2}}))
    args = build_parser().parse_args(["generate", "p.jsonl", "-o", "x.jsonl", "--config", str(config), "-n", "5"])
    settings = generate_settings(args)
    assert settings.models == ["gemma-3-270m"] and (settings.sampling.n, settings.sampling.temperature) == (5, 0.2)


def test_select_and_verify_take_config_files_and_write_the_resolved_settings(tmp_path):
    scores = write_rows([_scored("a", 0, "m1", -1.0), _scored("a", 1, "m2", -0.2)], tmp_path / "scores.jsonl")
    config = tmp_path / "select.yaml"
    config.write_text("strategy: lowest\nseed: 7\n")
    assert main(["select", str(scores), "-o", str(tmp_path / "sel.jsonl"), "--config", str(config)]) == 0
    assert read_sidecar(tmp_path / "sel.jsonl")["settings"]["strategy"] == "lowest"
    assert main(["select", str(scores), "-o", str(tmp_path / "s2.jsonl"), "--config", str(config),
                 "--strategy", "grape"]) == 0  # fmt: skip
    meta = read_sidecar(tmp_path / "s2.jsonl")["settings"]
    assert (meta["strategy"], meta["seed"]) == ("grape", 7)
    item = {"id": "q", "prompt": "1+1?", "answer": "2", "candidates": [{"text": "The answer is 2", "source": "a"}]}
    pool = write_rows([item], tmp_path / "pool.jsonl")
    config = tmp_path / "verify.yaml"
    config.write_text("verifier: number\n")
    assert main(["verify", str(pool), "-o", str(tmp_path / "v.jsonl"), "--config", str(config)]) == 0
    assert read_sidecar(tmp_path / "v.jsonl")["settings"]["verifier"] == "number"
    with pytest.raises(GrapeError, match="unknown VerifySettings setting"):
        verify(pool, None, verifer="number")


def test_an_unknown_key_in_a_config_file_is_a_one_line_error(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("stratgy: lowest\n")
    assert main(["select", "scores.parquet", "-o", str(tmp_path / "x.jsonl"), "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown setting(s) stratgy" in err and len(err.splitlines()) == 1


def _scored(ident: str, k: int, source: str, mean: float) -> dict:
    return {"id": ident, "candidate": k, "source": source, "n_tokens": 4, "sum_logprob": 4 * mean,
            "mean_logprob": mean, "status": "scored", "row": 1, "prompt": f"prompt {ident}", "messages": None,
            "response": f"{ident}-{k}", "answer": None, "correct": None}  # fmt: skip


def test_a_mapping_for_a_nested_settings_field_updates_it_key_by_key():
    from grape.generation.backend import Sampling
    from grape.generation.settings import GenerateSettings

    base = GenerateSettings(sampling=Sampling(n=3, max_new_tokens=64))
    settings = with_overrides(GenerateSettings, base, {"sampling": {"temperature": 0.0}})
    assert settings.sampling == Sampling(n=3, temperature=0.0, max_new_tokens=64)
    assert base.sampling.temperature == 0.7  # the given settings are not changed
    with pytest.raises(GrapeError, match="GenerateSettings.sampling"):
        with_overrides(GenerateSettings, None, {"sampling": {"temprature": 0.0}})
