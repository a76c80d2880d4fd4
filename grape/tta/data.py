"""Domain-labelled image sets and the DomainBed split: leave one domain out, validate on the training domains.

Two sources give the same `DomainImages`:
- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, no download) in the RotatedMNIST design: the
  images are dealt to six domains (disjoint subsets, as DomainBed does) and domain d is rotated by
  ``DIGIT_ANGLES[d]`` degrees counter-clockwise after upsampling to 16x16 and a 2-pixel zero border (20x20,
  so that a rotation does not cut the digit's corners).
- a user's ``.npz`` with ``x`` (N, H, W) or (N, C, H, W), ``y`` (N,) class ids, ``domain`` (N,) names or ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grape.errors import GrapeError, InputError

DIGIT_ANGLES = (0, 15, 30, 45, 60, 75)


@dataclass
class DomainImages:
    x: np.ndarray  # (N, C, H, W) float32
    y: np.ndarray  # (N,) int64 class ids
    domain: np.ndarray  # (N,) int64 index into names
    names: list[str]  # one per domain

    @property
    def classes(self) -> int:
        return int(self.y.max()) + 1


@dataclass
class Split:
    """Indices into a `DomainImages`: training and validation rows of the training domains, and the target."""

    train: np.ndarray
    val: np.ndarray
    target: np.ndarray


def load_domains(source: str, data_seed: int = 0) -> DomainImages:
    """``digits`` or a path to a ``.npz`` file."""
    if source == "digits":
        return rotated_digits(data_seed)
    if not source.endswith(".npz"):
        raise GrapeError(f"--data: expected 'digits' or a .npz file, got {source!r}")
    return read_npz(source)


def upsampled_digit(image: np.ndarray) -> np.ndarray:
    """(8, 8) digit in 0..16 -> (20, 20) float32 in [0, 1]: bilinear x2, then a 2-pixel zero border."""
    from scipy.ndimage import zoom

    big = zoom(image.astype(np.float32) / 16.0, 2, order=1)
    return np.pad(np.clip(big, 0.0, 1.0), 2)


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    """(H, W) -> (H, W): rotated counter-clockwise (as seen with row 0 at the top) about the centre, bilinear."""
    from scipy.ndimage import rotate

    return np.clip(rotate(image, degrees, reshape=False, order=1, mode="constant"), 0.0, 1.0).astype(np.float32)


def rotated_digits(data_seed: int = 0, angles: tuple[int, ...] = DIGIT_ANGLES) -> DomainImages:
    """The digits dealt in a seeded order to ``len(angles)`` disjoint domains, domain d rotated by angles[d]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(data_seed).permutation(len(digits.target))
    domain = np.empty(len(order), dtype=np.int64)
    for d in range(len(angles)):
        domain[order[d :: len(angles)]] = d
    x = np.stack([rotated(upsampled_digit(img), angles[d]) for img, d in zip(digits.images, domain, strict=True)])
    return DomainImages(x[:, None], digits.target.astype(np.int64), domain, [str(a) for a in angles])


def read_npz(path: str | Path) -> DomainImages:
    """A user's ``.npz`` of x, y, domain; a bad field is a one-line error naming file, row and field."""
    file = str(path)
    if not Path(path).is_file():
        raise GrapeError(f"{file}: no such file")
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(file, None, None, f"not a readable .npz file ({exc})") from exc
    for key in ("x", "y", "domain"):
        if key not in arrays.files:
            raise InputError(file, None, key, f"missing (the file has {', '.join(arrays.files) or 'no arrays'})")
    x, y, domain = arrays["x"], arrays["y"], arrays["domain"]
    if x.ndim not in (3, 4) or not np.issubdtype(x.dtype, np.number):
        raise InputError(file, None, "x", f"expected numbers shaped (N, H, W) or (N, C, H, W), got {x.shape}")
    for key, values in (("y", y), ("domain", domain)):
        if values.shape != (len(x),):
            raise InputError(file, None, key, f"expected shape ({len(x)},) to match x, got {values.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(file, None, "y", f"expected integer class ids, got {y.dtype}")
    if (bad := np.flatnonzero(y < 0)).size:
        raise InputError(file, int(bad[0]), "y", f"class id {int(y[bad[0]])} is negative")
    flat = x.reshape(len(x), -1)
    if (bad := np.flatnonzero(~np.isfinite(flat).all(axis=1))).size:
        raise InputError(file, int(bad[0]), "x", "has a NaN or infinite value")
    names, index = np.unique(domain.astype(str), return_inverse=True)
    if len(names) < 2:
        raise InputError(file, None, "domain", f"needs at least two domains, found {len(names)}")
    images = x[:, None] if x.ndim == 3 else x
    return DomainImages(images.astype(np.float32), y.astype(np.int64), index.astype(np.int64), list(names))


def leave_one_out(data: DomainImages, heldout: str, val_fraction: float, seed: int) -> Split:
    """DomainBed's protocol: the held-out domain is the target; each training domain keeps ``val_fraction``
    of its rows (seeded) for training-domain validation, the rest trains."""
    if heldout not in data.names:
        raise GrapeError(f"--heldout: no domain {heldout!r}; the domains are {', '.join(data.names)}")
    if not 0.0 < val_fraction < 1.0:
        raise GrapeError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    target_index = data.names.index(heldout)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for d in range(len(data.names)):
        if d == target_index:
            continue
        rows = rng.permutation(np.flatnonzero(data.domain == d))
        cut = max(1, int(round(val_fraction * len(rows))))
        val.append(rows[:cut])
        train.append(rows[cut:])
    return Split(np.concatenate(train), np.concatenate(val), np.flatnonzero(data.domain == target_index))
