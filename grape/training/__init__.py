"""Training: the home of objectives. The sft stage (`grape.training.sft.sft`), the loss functions on per-token
log-probs (`losses`), the table of objectives `grape sft --loss` offers (`objectives`), and the trainer's loss hook
that applies them (`trainer`, with the per-token weight column carried by `collator`).

Import the stage from its module, ``from grape.training.sft import sft``: the package itself must not load
torch (`grape --help` stays fast), and a lazy ``grape.training.sft`` function would be shadowed by the
module of the same name as soon as anything imports it.
"""

from grape.training.settings import SFTSettings

__all__ = ["SFTSettings"]
