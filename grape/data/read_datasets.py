"""The inputs that Hugging Face ``datasets`` reads: ``save_to_disk`` directories, Hub dataset ids, and
``Dataset`` objects. Each gives its records in order (record N is row N); read_rows.py numbers them.

Every failure is one `InputError` naming the input: a split to choose, a config (``--subset``) to choose,
a Hub that cannot be reached (offline mode, no network), a dataset that does not exist there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grape.errors import InputError


def is_dataset_object(value: Any) -> bool:
    """A ``datasets`` Dataset, DatasetDict or IterableDataset (checked without importing datasets)."""
    return type(value).__module__.split(".")[0] == "datasets"


def dataset_object_rows(value: Any, name: str, split: str | None) -> Any:
    """The records of a Dataset as given, or of the chosen split of a DatasetDict."""
    if _is_dict_of_splits(value):
        names = list(value.keys())
        if split is None and len(names) != 1:
            raise InputError(name, None, None, f"several splits {names}: choose one with --split")
        chosen = split or names[0]
        if chosen not in names:
            raise InputError(name, None, None, f"no split '{chosen}' (have {names})")
        return value[chosen]
    return value


def _is_dict_of_splits(value: Any) -> bool:
    return type(value).__name__ in ("DatasetDict", "IterableDatasetDict")


def disk_dataset_rows(path: Path, split: str | None) -> Any:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise InputError(str(path), None, None, f"not a datasets directory saved by save_to_disk ({exc})") from exc
    return dataset_object_rows(loaded, str(path), split)


def hub_rows(name: str, split: str | None, subset: str | None, revision: str | None) -> Any:
    """A dataset on the Hugging Face Hub (or in the local cache of it): ``--subset`` is the config name."""
    import datasets

    where = name + (f" ({subset})" if subset else "")
    try:
        if split is None:
            names = datasets.get_dataset_split_names(name, config_name=subset, revision=revision)
            if len(names) != 1:
                raise InputError(where, None, None, f"several splits {names}: choose one with --split")
            split = names[0]
        return datasets.load_dataset(name, name=subset, split=split, revision=revision)
    except InputError:
        raise
    except ConnectionError as exc:
        raise InputError(name, None, None, _unreachable(exc)) from exc
    except FileNotFoundError as exc:  # datasets' DatasetNotFoundError and a missing revision are FileNotFoundErrors
        raise InputError(
            name, None, None, "no such file or directory, and no dataset of that name on the Hugging Face Hub "
            f"(private or gated? log in with `hf auth login`) [{_first_line(exc)}]"
        ) from exc  # fmt: skip
    except ValueError as exc:  # a missing or unknown config, an unknown split
        hint = " (choose one with --subset)" if "config" in str(exc).lower() else ""
        raise InputError(where, None, None, _first_line(exc) + hint) from exc


def _unreachable(exc: Exception) -> str:
    import datasets

    if datasets.config.HF_HUB_OFFLINE or "OfflineModeIsEnabled" in str(exc):
        return (
            "no such file or directory, and it could not be reached on the Hugging Face Hub offline "
            "(HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set, and it is not in the local cache)"
        )
    return f"no such file or directory, and the Hugging Face Hub could not be reached ({_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
