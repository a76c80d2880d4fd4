"""`grape budget`: SFT then DPO under a fixed data budget, one trained and evaluated model per SFT share and seed.

The draw (what a budget buys, which instructions) is grape.budgeting.draw, one cell's run grape.budgeting.cell, the
whole grid grape.budgeting.run (``budget(sft_pool, pairs, data, output_dir, settings=None, **overrides)``), the
reported metrics grape.budgeting.results; docs/budget.md. `budget` is imported on first use: importing the settings
must not load torch.
"""

from typing import Any

from grape.budgeting.settings import BudgetSettings

__all__ = ["BudgetSettings", "budget"]


def __getattr__(name: str) -> Any:
    if name == "budget":
        from grape.budgeting.run import budget

        return budget
    raise AttributeError(f"module 'grape.budgeting' has no attribute {name!r}")
