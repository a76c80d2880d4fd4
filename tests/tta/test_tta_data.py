"""The digits domains are what they say, a user's .npz is read or refused in one line, and the split is
DomainBed's (leave one domain out, validation rows from the training domains only)."""

import numpy as np
import pytest

from grape.errors import GrapeError, InputError
from grape.tta.data import DIGIT_ANGLES, leave_one_out, read_npz, rotated, rotated_digits, upsampled_digit


@pytest.fixture(scope="module")
def digits():
    return rotated_digits(data_seed=0)


def test_rotation_is_counter_clockwise_about_the_centre():
    image = np.zeros((21, 21), np.float32)
    image[10, 16] = 1.0  # six pixels right of the centre
    assert np.argwhere(rotated(image, 90) > 0.5).tolist() == [[4, 10]]  # six pixels above it
    assert np.argwhere(rotated(image, 180) > 0.5).tolist() == [[10, 4]]
    spot = rotated(image, 30)  # the centre of mass turns by 30 degrees, radius kept
    rows, cols = np.indices(spot.shape)
    dy, dx = 10 - (rows * spot).sum() / spot.sum(), (cols * spot).sum() / spot.sum() - 10
    assert np.degrees(np.arctan2(dy, dx)) == pytest.approx(30, abs=1.5)
    assert np.hypot(dx, dy) == pytest.approx(6, abs=0.3)


def test_digits_make_six_disjoint_rotated_domains(digits):
    from sklearn.datasets import load_digits

    raw = load_digits()
    assert digits.names == [str(a) for a in DIGIT_ANGLES] == ["0", "15", "30", "45", "60", "75"]
    assert digits.x.shape == (1797, 1, 20, 20) and digits.x.dtype == np.float32
    assert digits.x.min() >= 0.0 and digits.x.max() <= 1.0
    assert np.bincount(digits.domain).tolist() == [300, 300, 300, 299, 299, 299]  # each image in one domain
    np.testing.assert_array_equal(digits.y, raw.target)
    for d, angle in enumerate(DIGIT_ANGLES):
        i = int(np.flatnonzero(digits.domain == d)[0])
        np.testing.assert_allclose(digits.x[i, 0], rotated(upsampled_digit(raw.images[i]), angle), atol=1e-6)
    first = int(np.flatnonzero(digits.domain == 0)[0])  # 0 degrees: the upsampled digit itself
    np.testing.assert_allclose(digits.x[first, 0], upsampled_digit(raw.images[first]), atol=1e-6)
    assert upsampled_digit(raw.images[first])[:2].sum() == 0  # the border stays empty
    again = rotated_digits(data_seed=0)
    np.testing.assert_array_equal(again.domain, digits.domain)
    assert not np.array_equal(rotated_digits(data_seed=1).domain, digits.domain)


def test_leave_one_out_validates_on_training_domains_only(digits):
    split = leave_one_out(digits, "45", val_fraction=0.2, seed=3)
    assert set(digits.domain[split.target]) == {3} and len(split.target) == 299
    assert 3 not in set(digits.domain[split.train]) | set(digits.domain[split.val])
    assert len(split.val) == 5 * 60 and len(split.train) == 3 * 240 + 2 * 239  # round(0.2 * 299) = 60
    assert not set(split.train) & set(split.val)
    other = leave_one_out(digits, "45", val_fraction=0.2, seed=4)
    assert set(other.val) != set(split.val)
    with pytest.raises(GrapeError, match="no domain '90'; the domains are 0, 15, 30, 45, 60, 75"):
        leave_one_out(digits, "90", 0.2, 0)


def test_a_users_npz_is_read_with_named_domains(tmp_path):
    path = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.random((6, 5, 5)), y=np.array([0, 1, 2, 0, 1, 2]), domain=np.array(list("aabbcc")))
    data = read_npz(path)
    assert data.x.shape == (6, 1, 5, 5) and data.names == ["a", "b", "c"] and data.classes == 3
    assert data.domain.tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((3, 4, 4)), "y": np.zeros(3, int)}, r"d\.npz, field 'domain': missing"),
        ({"x": np.zeros((3, 4, 4)), "y": np.zeros(2, int), "domain": np.arange(3)}, r"field 'y': expected shape"),
        ({"x": np.zeros((3, 4, 4)), "y": np.array([0, -1, 0]), "domain": np.arange(3)},
         r"d\.npz, row 1, field 'y': class id -1 is negative"),
        ({"x": np.array([[[0.0]], [[np.nan]]]), "y": np.zeros(2, int), "domain": np.arange(2)},
         r"d\.npz, row 1, field 'x': has a NaN"),
        ({"x": np.zeros((3, 4, 4)), "y": np.zeros(3), "domain": np.arange(3)}, r"field 'y': expected integer"),
        ({"x": np.zeros((2, 4, 4)), "y": np.zeros(2, int), "domain": np.zeros(2, int)}, "at least two domains"),
    ],
)  # fmt: skip
def test_a_bad_npz_is_a_one_line_error_naming_row_and_field(tmp_path, arrays, message):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputError, match=message) as caught:
        read_npz(path)
    assert len(str(caught.value).splitlines()) == 1
