"""Who moves when (parameter snapshots): the network step leaves w alone, the w step changes only w, test time
changes only Θ (itta) or only the featurizer (naive ttt); BatchNorm stays frozen at test time."""

import numpy as np
import pytest
import torch

from grape.tta.adapt import Adapter
from grape.tta.network import DomainNet
from grape.tta.steps import network_step, weight_step


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.rand(12, 1, 8, 8), torch.randint(0, 3, (12,))


def tiny_net() -> DomainNet:
    torch.manual_seed(0)
    return DomainNet((1, 8, 8), classes=3, width=4, blocks=3, adapter_depth=2, weight_depth=3)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def changed(before: dict, model: torch.nn.Module) -> set[str]:
    return {name for name, value in model.state_dict().items() if not torch.equal(before[name], value)}


def group(names: set[str], prefix: str) -> set[str]:
    return {n for n in names if n.startswith(prefix)}


def parameter_names(model: torch.nn.Module, *prefixes: str) -> set[str]:
    return {n for n, _ in model.named_parameters() if n.startswith(prefixes)}


@pytest.mark.parametrize("method", ["erm", "mixstyle", "ttt", "itta"])
def test_the_network_step_moves_featurizer_and_classifier_only(batch, method):
    model = tiny_net()
    model.train()
    before = snapshot(model)
    optimizer = torch.optim.Adam(model.network_parameters(), lr=1e-2)
    losses = network_step(model, optimizer, *batch, method)
    moved = changed(before, model)
    assert group(moved, "weight.") == set() and group(moved, "adapters.") == set()
    assert parameter_names(model, "stem.", "blocks.", "classifier.") <= moved
    assert all(p.grad is None for p in [*model.weight.parameters(), *model.adapters.parameters()])
    assert ("consistency" in losses) == (method in ("ttt", "itta"))


def test_the_w_step_changes_only_w(batch):
    model = tiny_net()
    model.train()
    before = snapshot(model)
    optimizer = torch.optim.Adam(model.weight.parameters(), lr=1e-2)
    penalty = weight_step(model, optimizer, *batch, penalty_weight=0.1)
    assert penalty > 0
    moved = changed(before, model)
    assert moved and moved <= parameter_names(model, "weight.")  # running statistics included: untouched
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize(("method", "movable"), [("itta", ("adapters.",)), ("ttt", ("stem.", "blocks."))])
def test_test_time_steps_change_only_their_parameters_and_batchnorm_stays_frozen(batch, method, movable):
    trained = tiny_net()
    trained.train()
    optimizer = torch.optim.Adam(trained.network_parameters(), lr=1e-2)
    for _ in range(3):  # non-trivial running statistics, and f_w away from its start
        network_step(trained, optimizer, *batch, "itta")
    with torch.no_grad():
        for p in trained.weight.parameters():
            p.add_(0.05 * torch.randn_like(p))
    trained.train()  # left in training mode on purpose: the adapter must freeze BatchNorm itself
    before = snapshot(trained)
    adapter = Adapter(trained, method, lr=1e-2)
    x = torch.rand(20, 1, 8, 8)
    adapter.online_predictions(x, batch=8, order=np.arange(20))
    moved = changed(before, adapter.model)
    assert moved and moved <= parameter_names(adapter.model, *movable)
    assert not any(n.endswith(("running_mean", "running_var", "num_batches_tracked")) for n in moved)
    assert changed(before, trained) == set()  # the trained model itself is never touched
    norms = [m for m in adapter.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    adapter.reset()
    assert changed(before, adapter.model) == set()


def test_online_predictions_follow_the_order_and_match_a_frozen_model_when_lr_is_zero(batch):
    trained = tiny_net()
    trained.eval()
    x = torch.rand(10, 1, 8, 8)
    adapter = Adapter(trained, "itta", lr=0.0)
    order = np.random.default_rng(0).permutation(10)
    torch.testing.assert_close(adapter.online_predictions(x, 4, order), trained(x).argmax(dim=1))
