"""The objectives `grape sft --loss` offers: one table, one row per objective.

A new objective is a new row here (and, when it needs new math, a function in `losses.py` and a branch in
`trainer.py`'s loss hook), never a new trainer. This module loads no torch: the settings check and the
command line read the names from it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Objective:
    name: str
    summary: str  # one line, shown by `grape sft --help`
    # None: TRL's own loss (SFTTrainer.compute_loss, untouched). "token" / "sequence": the token-weighted NLL of
    # the `loss_weights` column, normalised over the tokens of the batch or per sequence (losses.py).
    weights_per: str | None = None
    # IFT: the training pass sees the model's own predictions at response positions (ift.py) and the loss is
    # losses.ift_nll, a per-sequence mean (hyperparameters: the settings' ift_lambda and ift_gamma).
    temporal_residual: bool = False

    @property
    def weighted(self) -> bool:
        """Whether the objective reads per-token weights (the `loss_weights` column of the selection)."""
        return self.weights_per is not None

    @property
    def mean_over(self) -> str | None:
        """What the loss hook's loss is a mean over, ``"token"`` or ``"sequence"``; None: TRL's own loss."""
        return self.weights_per or ("sequence" if self.temporal_residual else None)


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("nll", "mean NLL of the response tokens (TRL's SFT loss; any loss_weights are ignored)"),
        Objective(
            "weighted",
            "per-sequence weighted NLL, Σ w·nll / Σ w per row then the mean over rows (TL-Training's key tokens); "
            "weights from the rows' loss_weights (one per response token, absent = all 1)",
            weights_per="sequence",
        ),
        Objective(
            "weighted-token",
            "weighted NLL over all response tokens of a step, Σ w·nll / Σ w (all weights 1 = nll)",
            weights_per="token",
        ),
        Objective(
            "ift",
            "Intuitive Fine-Tuning: response inputs mix the gold token's embedding with the model's own greedy "
            "prediction's, (1-λ)·E(y*)+λ·E(ŷ), and each token's NLL is weighted by the γ-discounted loss of what "
            "follows it; per-row means (--ift-lambda 0.2, --ift-gamma 0.95; both 0: the per-row mean NLL)",
            temporal_residual=True,
        ),
    )
}
