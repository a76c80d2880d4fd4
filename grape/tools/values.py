"""Is an argument's value one of the accepted ones? BFCL's AST rules for Python, as pure functions.

Following BFCL v4's checker (bfcl_eval/eval_checker/ast_eval/ast_checker.py, `simple_function_checker`
and the checkers it calls), for a value, its parameter's schema type and the accepted values:
- an ``int`` is accepted where a ``float`` is documented (converted first); a ``tuple`` where a ``tuple``
  is documented is compared as a list;
- the value's Python type must be the documented one (string, integer, float, boolean, array/tuple = list,
  dict, any = string; a bool is not an integer), or the type of the accepted values (then the value is a
  "variable" and compared as it is); arrays check their items' type one level deep;
- strings compare after `standardized` (case, spaces and ``,./-_*^`` ignored), in lists one level deep and
  as dict values; dicts need their keys among the accepted dict's and every non-optional key present;
  anything else must equal an accepted value (``==``: 5 equals 5.0).
Without documentation for the parameter the type check is skipped and the value compared by its own type.
"""

from __future__ import annotations

import re
from typing import Any

from grape.tools.calls import OPTIONAL

PYTHON_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list,
                                 "tuple": list, "dict": dict, "any": str}  # fmt: skip
_IGNORED = re.compile(r"[ ,./\-_*^]")


def standardized(text: str) -> str:
    """BFCL's string comparison key: spaces and ``,./-_*^`` dropped, lower case, ``'`` read as ``"``."""
    return _IGNORED.sub("", text).lower().replace("'", '"')


def value_accepted(value: Any, accepted: list[Any], schema_type: str | None, item_type: str | None = None) -> bool:
    """Whether ``value`` matches one of ``accepted`` under BFCL's rules (see the module's docstring)."""
    if schema_type == "tuple" and isinstance(value, tuple):
        value = list(value)
    if schema_type == "float" and type(value) is int:
        value = float(value)
    expected = PYTHON_TYPES.get(schema_type) if schema_type else None
    if expected is None:  # undocumented (or an unknown type name): compare by the value's own type
        expected = type(value) if not isinstance(value, tuple) else list
        value = list(value) if isinstance(value, tuple) else value
        nested = None
    else:
        nested = PYTHON_TYPES.get(item_type) if schema_type in ("array", "tuple") and item_type else None
    if expected is list and nested is None and value and all(isinstance(v, dict) for v in value):
        nested = dict  # a list of dicts compares key by key, as BFCL's answer key writes it (`exact_accepted`)
    typed, variable = _type_check(value, accepted, expected, nested)
    if not typed:
        return False
    if not variable:
        if expected is dict:
            return _dict_accepted(value, accepted)
        if expected is list and nested is dict:
            return _list_of_dicts_accepted(value, accepted)
        if expected is str:
            return standardized(value) in [standardized(a) for a in accepted if isinstance(a, str)]
        if expected is list:
            return _standardized_list(value) in [_standardized_list(a) for a in accepted if isinstance(a, list)]
    return value in accepted


def _accepted_type(accepted: list[Any]) -> type | None:
    return next((type(a) for a in accepted if a != OPTIONAL), None)


def _type_check(value: Any, accepted: list[Any], expected: type, nested: type | None) -> tuple[bool, bool]:
    """(type is right, value is a "variable"), as BFCL's `type_checker` decides."""
    accepted_type = _accepted_type(accepted)
    variable = accepted_type is not None and accepted_type is not expected
    if type(value) is expected:
        if nested is None:
            return True, variable
        # BFCL: a non-list option (the optional marker "") passes the nested check
        items_typed = any(
            not isinstance(option, list) or all(_type_check(item, option, nested, None)[0] for item in value)
            for option in accepted
        )
        return items_typed, variable
    if accepted_type is not None and type(value) is accepted_type:
        return True, True
    return False, variable


def _standardized_list(items: list[Any]) -> list[Any]:
    return [standardized(i) if isinstance(i, str) else i for i in items]


def _dict_accepted(value: dict[str, Any], accepted: list[Any]) -> bool:
    for option in accepted:
        if option == OPTIONAL or not isinstance(option, dict):
            continue
        keys_known = all(key in option for key in value)
        values_ok = keys_known and all(
            (standardized(v) if isinstance(v, str) else v)
            in [standardized(a) if isinstance(a, str) else a for a in option[key]]
            for key, v in value.items()
        )
        complete = all(key in value or OPTIONAL in values for key, values in option.items())
        if values_ok and complete:
            return True
    return False


def _list_of_dicts_accepted(value: list[Any], accepted: list[Any]) -> bool:
    return any(
        isinstance(option, list)
        and len(option) == len(value)
        and all(isinstance(v, dict) and _dict_accepted(v, [o]) for v, o in zip(value, option, strict=True))
        for option in accepted
    )
