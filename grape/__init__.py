"""grape: fit-aware post-training. Score candidate responses with the target model, keep the best fit.

    import grape
    rows = grape.score("candidates.jsonl", "scores.parquet", model="gemma-3-270m")
    chosen, summary = grape.select("scores.parquet", "selected.jsonl", strategy="grape")

The same stages run from the shell as `grape score`, `grape select`, ... (`grape --help`).
"""

__version__ = "0.1.0"

__all__ = ["score", "select", "__version__"]


def __getattr__(name: str):
    # Imported lazily: `import grape` stays fast and does not pull torch until a stage is used.
    if name == "score":
        from grape.scoring.score import score

        return score
    if name == "select":
        from grape.selection.select import select

        return select
    raise AttributeError(f"module 'grape' has no attribute {name!r}")
