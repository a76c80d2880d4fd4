"""The settings of `grape tta` (torch-free, so that `grape --help` stays fast).

Defaults follow the ITTA release (github.com/liangchen527/ITTA, DomainBed) where it has a value for small
images: Adam at 1e-3, the w step and the test-time step at a tenth of it, alignment penalty 0.1, f_w of
depth 10 and f_Θ of depth 5, MixStyle with Beta(0.1, 0.1). Steps and batch sizes are smaller, to fit a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("erm", "mixstyle", "ttt", "itta-no-tt", "itta")
ADAPTING = ("ttt", "itta")  # the methods that take optimiser steps at test time


@dataclass
class TTASettings:
    data: str = "digits"  # digits (scikit-learn's bundled 8x8 digits, rotated) or a .npz of x, y, domain
    heldout: str = "0"  # the target domain's name (digits: an angle, 0 | 15 | 30 | 45 | 60 | 75)
    method: str = "itta"  # erm | mixstyle | ttt | itta-no-tt | itta
    seed: int = 0  # weights, batches, the validation split and MixStyle's draws
    data_seed: int = 0  # digits only: which images go to which rotation (fixed across runs, as in DomainBed)
    steps: int = 300  # training steps
    batch_per_domain: int = 16  # a training batch holds this many images of every training domain
    lr: float = 1e-3  # Adam, network and classifier
    weight_lr_ratio: float = 0.1  # the w step's learning rate, as a fraction of lr
    penalty_weight: float = 0.1  # the weight of the gradient-alignment penalty in the w step
    val_fraction: float = 0.2  # of each training domain, held back to choose the checkpoint
    eval_every: int = 50  # steps between validation checks; the best check's weights are kept
    width: int = 16  # channels of the first block (doubled by each later block)
    blocks: int = 3  # residual blocks
    weight_depth: int = 10  # affine layers of f_w (the learnable consistency loss)
    adapter_depth: int = 5  # affine layers of each f_Θ (test-time parameters after each block)
    mixstyle_alpha: float = 0.1  # MixStyle's Beta(α, α) mixing weights
    test_lr_ratio: float = 0.1  # the test-time step's learning rate, as a fraction of lr
    test_batch: int = 64  # target images per test-time step (online: batches in a seeded order)
