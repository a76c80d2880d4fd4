"""grape: fit-aware post-training. Score candidate responses with the target model, keep the best fit.

    import grape
    rows = grape.score("candidates.jsonl", "scores.parquet", model="gemma-3-270m")
    chosen, summary = grape.select("scores.parquet", "selected.jsonl", strategy="grape")

Every stage is ``stage(input, output=None, settings=None, **overrides)``: the input is a file, a
``datasets.Dataset`` or a list of dicts, and the rows come back as a list of dicts
(``datasets.Dataset.from_list(rows)`` makes them a Dataset). The same stages run from the shell as
`grape score`, `grape select`, ... (`grape --help`).
"""

from importlib import import_module

__version__ = "0.1.0"

# name -> the module that defines it, imported on first use. (`rl` is not here: `grape.rl` is its package;
# `from grape.rl.run import rl`.)
STAGES = {
    "generate": "grape.generation.generate",
    "verify": "grape.verification.verify",
    "score": "grape.scoring.score",
    "select": "grape.selection.select",
    "pairs": "grape.selection.pairs",
    "sft": "grape.training.sft",
    "dpo": "grape.training.dpo",
    "reward_model": "grape.training.reward_model",
    "evaluate": "grape.evaluation.evaluate",
    "budget": "grape.budgeting.run",
    "decode": "grape.decoding.decode",
}

__all__ = [*STAGES, "__version__"]


def __getattr__(name: str):
    # Imported lazily: `import grape` stays fast and does not pull torch until a stage is used.
    if name in STAGES:
        return getattr(import_module(STAGES[name]), name)
    raise AttributeError(f"module 'grape' has no attribute {name!r}")
