"""One training step of each method, and ITTA's w step.

Network step (every method; only featurizer and classifier move, via ``backward(inputs=...)``):
- erm: CE(h(z), y)
- mixstyle: CE(h(z), y) + CE(h(z′), y), z′ the MixStyle view (MixStyle at p = 0.5 in expectation, both views)
- ttt: the same + mean((z′ − z)²), a fixed consistency loss
- itta: the same + mean((f_w(z′ − z))²), the learnable consistency loss
Then, for itta only, the w step: new views of the same batch; the consistency loss's gradient with respect to
the featurizer (a function of w, create_graph) is pulled towards the main loss's gradient, both z-scored,
penalty 0.1 · mean squared difference; only w moves (its own Adam at a tenth of the learning rate).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from grape.tta.losses import alignment_penalty, consistency_loss, two_view_cross_entropy
from grape.tta.network import DomainNet

TRAINING = {"erm": "erm", "mixstyle": "mixstyle", "ttt": "ttt", "itta-no-tt": "itta", "itta": "itta"}


def random_mix_block(model: DomainNet) -> int:
    """Where the augmented view branches: after block 0 or 1 (the release: its layer1 or layer2), at random."""
    return int(torch.randint(0, min(2, len(model.blocks)), ()).item())


def main_and_consistency(model: DomainNet, x: torch.Tensor, y: torch.Tensor, learnable: bool,
                         ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """x (B, C, H, W), y (B,) -> (two-view CE, consistency loss) on fresh views of the batch."""
    z, z_aug = model.two_views(x, random_mix_block(model))
    main = two_view_cross_entropy(model.classifier(z), model.classifier(z_aug), y)
    return main, consistency_loss(z, z_aug, model.weight if learnable else None)


def network_step(model: DomainNet, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                 method: str) -> dict[str, float]:  # fmt: skip
    """One update of featurizer and classifier for ``method`` (a key of TRAINING); w and f_Θ get no gradient."""
    kind = TRAINING[method]
    if kind == "erm":
        main, consistency = nn.functional.cross_entropy(model(x), y), None
    else:
        main, consistency = main_and_consistency(model, x, y, learnable=kind == "itta")
    loss = main if kind in ("erm", "mixstyle") else main + consistency
    optimizer.zero_grad(set_to_none=True)
    loss.backward(inputs=model.network_parameters())
    optimizer.step()
    return {"main": main.item(), **({"consistency": consistency.item()} if kind in ("ttt", "itta") else {})}


def weight_step(model: DomainNet, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                penalty_weight: float = 0.1) -> float:  # fmt: skip
    """One update of f_w that aligns the consistency gradient with the main gradient; returns the penalty.
    BatchNorm normalises with batch statistics as in training but its running statistics stay as they are."""
    featurizer = model.featurizer_parameters()
    weights = list(model.weight.parameters())
    with running_stats_frozen(model):
        main, consistency = main_and_consistency(model, x, y, learnable=True)
    g_consistency = torch.autograd.grad(consistency, featurizer, create_graph=True, allow_unused=True)
    g_main = torch.autograd.grad(main, featurizer, allow_unused=True)
    pairs = [(c, m) for c, m in zip(g_consistency, g_main, strict=True) if c is not None and m is not None]
    penalty = alignment_penalty([c for c, _ in pairs], [m for _, m in pairs], penalty_weight)
    grads = torch.autograd.grad(penalty, weights, allow_unused=True)
    optimizer.zero_grad(set_to_none=True)
    for parameter, grad in zip(weights, grads, strict=True):
        parameter.grad = grad
    optimizer.step()
    return penalty.item()


@contextmanager
def running_stats_frozen(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers keep using batch statistics but do not move their running mean/var (momentum 0)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)
