"""The one settings convention: dataclass settings from defaults < a YAML file < overrides (TRL's order).

Every stage owns a settings dataclass (``<stage>/settings.py``) and is called as
``stage(input, output, settings=None, **overrides)``; `with_overrides` applies the keyword overrides and
refuses an unknown name (``score(..., modle="x")`` is an error, not a silently ignored typo). Every command
takes ``--config FILE`` whose keys are the settings' fields, with its flags winning (`load_settings`), and
the same reader builds a pipeline step's settings from its YAML mapping, so a key means the same thing in
``grape sft --config sft.yaml`` and in an ``sft`` step of a pipeline. The resolved settings are written
beside each output (`write_settings`, or the stage's sidecar).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from grape.errors import GrapeError

T = TypeVar("T")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file that must hold a mapping (an empty file is an empty mapping)."""
    file = Path(path)
    if not file.is_file():
        raise GrapeError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise GrapeError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GrapeError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def settings_from_dict(cls: type[T], data: dict[str, Any], where: str) -> T:
    """Build ``cls`` from a mapping; unknown keys and wrong types are user errors naming ``where``."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise GrapeError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    values = {key: coerce(hints[key], value, f"{where}: {key}") for key, value in data.items()}
    try:
        return cls(**values)
    except ValueError as error:  # a settings class's own check (__post_init__) of a value
        raise GrapeError(f"{where}: {error}") from None


def with_overrides(cls: type[T], settings: T | None, overrides: dict[str, Any]) -> T:
    """``settings`` (or the defaults) with ``overrides`` applied; an unknown name is a one-line error.

    Values are Python values here (no YAML coercion): the Python API is typed by the dataclass itself. A
    mapping given for a nested settings field updates it key by key, as the YAML does (``generate(...,
    sampling={"temperature": 0})``: the other sampling settings keep their values).
    """
    base = settings if settings is not None else cls()
    if not isinstance(base, cls):
        raise GrapeError(f"settings must be a {cls.__name__}, got {type(base).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        hints = [f"{u} (did you mean {', '.join(close)}?)" if (close := difflib.get_close_matches(u, names, 2)) else u
                 for u in unknown]  # fmt: skip
        raise GrapeError(f"unknown {cls.__name__} setting(s): {'; '.join(hints)}")
    nested = {}
    for name, value in overrides.items():
        current = getattr(base, name)
        if isinstance(value, dict) and dataclasses.is_dataclass(current):
            merged = {**dataclasses.asdict(current), **value}
            nested[name] = settings_from_dict(type(current), merged, f"{cls.__name__}.{name}")
    return dataclasses.replace(base, **{**overrides, **nested})


def load_settings(cls: type[T], config: str | Path | None = None, overrides: dict[str, Any] | None = None) -> T:
    """Defaults, then the YAML file, then ``overrides`` (keys whose value is None are not given, so skipped)."""
    data = read_yaml(config) if config else {}
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    # a nested mapping (e.g. the score engine's flags) updates the file's mapping instead of replacing it
    merged = {k: {**data[k], **v} if isinstance(v, dict) and isinstance(data.get(k), dict) else v
              for k, v in given.items()}  # fmt: skip
    return settings_from_dict(cls, {**data, **merged}, str(config or "settings"))


def settings_dict(settings: Any) -> dict[str, Any]:
    """A plain mapping of a settings dataclass (nested dataclasses included), for YAML and hashing."""
    return dataclasses.asdict(settings)


def write_settings(settings: Any, path: str | Path, header: str = "") -> Path:
    """Save the resolved settings as YAML, so that every output says how it was made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(settings_dict(settings), sort_keys=False, allow_unicode=True)
    path.write_text((f"# {header}\n" if header else "") + body, encoding="utf-8")
    return path


def coerce(hint: Any, value: Any, where: str) -> Any:
    """Convert a YAML value to the field's type. PyYAML reads ``1e-4`` as a string, hence the float case."""
    if value is None:
        if _allows_none(hint):
            return None
        raise GrapeError(f"{where}: may not be null")
    options = [a for a in typing.get_args(hint) if a is not type(None)] if _is_union(hint) else [hint]
    for option in options:
        converted = _convert(option, value, where)
        if converted is not _FAIL:
            return converted
    names = " or ".join(getattr(o, "__name__", str(o)) for o in options)
    raise GrapeError(f"{where}: expected {names}, got {value!r}")


_FAIL = object()


def _convert(option: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(option)
    if option is Any:
        return value
    if option is bool:
        return value if isinstance(value, bool) else _FAIL
    if option is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _FAIL
    if option is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(value) if isinstance(value, str) else _FAIL
        except ValueError:
            return _FAIL
    if option is str:
        return value if isinstance(value, str) else _FAIL
    if origin is list:
        (item,) = typing.get_args(option) or (Any,)
        if isinstance(value, str):  # a single value where a list is expected
            value = [value]
        if not isinstance(value, list):
            return _FAIL
        items = [_convert(item, v, where) for v in value]
        return _FAIL if any(i is _FAIL for i in items) else items
    if origin is dict:
        return value if isinstance(value, dict) else _FAIL
    if dataclasses.is_dataclass(option):
        if isinstance(value, option):
            return value
        return settings_from_dict(option, value, where) if isinstance(value, dict) else _FAIL
    return value


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _allows_none(hint: Any) -> bool:
    return hint is Any or (_is_union(hint) and type(None) in typing.get_args(hint))
