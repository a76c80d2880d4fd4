"""DPO's reference log-probs as a scoring job: Σ log p_ref(response | prompt) of every chosen and rejected response,
computed by grape's scoring engine and handed to the trainer as precomputed.

Each pair becomes one grouped instruction with two candidates, ``[chosen, rejected]``: the engine renders them
with the same `Renderer` as the trainer, computes the shared prompt once (prefix sharing), runs the LM head
only on response rows, and packs batches to a token budget (DESIGN.md §4), where TRL's own precompute pass runs
both full sequences, padded, through the whole model. With an output folder the candidates and their scores are
kept there (``reference-candidates.jsonl``, ``reference.parquet`` with its sidecar), and a re-run (resume) reuses
the finished parts of the scoring job instead of scoring again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grape.data.records import Messages
from grape.data.tables import write_rows
from grape.errors import GrapeError
from grape.models.load import LoadedModel
from grape.scoring.score import score
from grape.scoring.settings import ScoreSettings
from grape.training.preference import PreferencePair

CANDIDATES, SCORES = "reference-candidates.jsonl", "reference.parquet"


def reference_candidates(texts: list[tuple[str | Messages, str, str]]) -> list[dict[str, Any]]:
    """The pairs as the scorer's grouped input: one instruction per pair, candidates ``[chosen, rejected]``."""
    return [{"id": f"pair-{number}", "prompt": prompt,
             "candidates": [{"text": chosen, "source": "chosen"}, {"text": rejected, "source": "rejected"}]}
            for number, (prompt, chosen, rejected) in enumerate(texts, start=1)]  # fmt: skip


def reference_logps(
    texts: list[tuple[str | Messages, str, str]],
    pairs: list[PreferencePair],
    reference: LoadedModel,
    template: str,
    eos: bool,
    folder: Path | None = None,
) -> tuple[list[float], list[float]]:
    """(Σ log p_ref of each chosen response, of each rejected one), in the order of ``pairs``.

    ``texts`` are the pairs' (prompt, chosen, rejected) and ``pairs`` their ids as the trainer lays them out;
    the scorer must count exactly their scored tokens (`PreferencePair.scored`; else this is a defect, and it
    says so). ``folder``: where the candidates and the scores are kept (None: in memory only).
    """
    candidates: Any = reference_candidates(texts)
    output = None
    if folder is not None:
        candidates = write_rows(candidates, folder / CANDIDATES)
        output = folder / SCORES
    settings = ScoreSettings(model=str(reference.identity.get("spec")), template=template, eos=eos, on_error="fail")
    rows = score(candidates, output, settings, loaded=reference)
    found = {(row["id"], row["candidate"]): row for row in rows}
    sums: tuple[list[float], list[float]] = ([], [])
    for number, pair in enumerate(pairs, start=1):
        for k, name in enumerate(("chosen", "rejected")):
            row, ids = found[f"pair-{number}", k], pair.scored(name)
            if row["n_tokens"] != len(ids):
                raise GrapeError(f"reference pass: pair {number} scored {row['n_tokens']} tokens of {row['source']}, "
                                 f"the trainer has {len(ids)}: a defect in grape, please report it")  # fmt: skip
            sums[k].append(row["sum_logprob"])
    return sums
