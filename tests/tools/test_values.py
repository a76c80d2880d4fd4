"""BFCL's value rules, case by case (bfcl_eval/eval_checker/ast_eval/ast_checker.py is the reference)."""

import pytest

from grape.tools.values import standardized, value_accepted


def test_standardized_ignores_case_spaces_and_some_punctuation():
    assert standardized("April 1, 2024") == standardized("april 1 2024") == standardized("April-1,2024") == "april12024"
    assert standardized("it's") == 'it"s'
    assert standardized("New York") != standardized("Newark")


@pytest.mark.parametrize(
    ("value", "accepted", "schema", "items", "ok"),
    [
        ("paris", ["Paris"], "string", None, True),  # case-insensitive
        ("Paris, France", ["Paris France"], "string", None, True),  # punctuation and spaces ignored
        ("Lyon", ["Paris", "paris"], "string", None, False),
        (5, [5.0], "float", None, True),  # an int where a float is documented
        (5.0, [5], "integer", None, False),  # but not a float where an int is
        (True, [1], "integer", None, False),  # a bool is not an integer
        (5, [5], "integer", None, True),
        ("5", [5], "integer", None, False),
        ("x", ["x"], "integer", None, True),  # a "variable": the accepted values are strings, compared as they are
        ("X", ["x"], "integer", None, False),  # ... exactly
        ([1, 2], [[1, 2]], "array", "integer", True),
        ([2, 1], [[1, 2]], "array", "integer", False),  # lists keep their order
        (["A b"], [["a-b"]], "array", "string", True),  # list items standardized one level deep
        ([1, "2"], [[1, 2]], "array", "integer", False),  # items' type checked one level deep
        ((1, 2), [[1, 2]], "tuple", "integer", True),  # a tuple compares as a list
        ({"a": "X"}, [{"a": ["x"]}], "dict", None, True),
        ({"a": "X", "b": 1}, [{"a": ["x"]}], "dict", None, False),  # a key the answer does not have
        ({}, [{"a": ["x", ""]}], "dict", None, True),  # a key whose accepted values include "" may be left out
        ({}, [{"a": ["x"]}], "dict", None, False),
        ([{"n": "Jo"}], [[{"n": ["jo"]}]], "array", "dict", True),  # a list of dicts, dict by dict
        ([{"n": "Jo"}, {"n": "Al"}], [[{"n": ["jo"]}]], "array", "dict", False),
        (True, ["", True], "boolean", None, True),
        (None, ["", None], "string", None, True),  # the accepted values' own type counts (BFCL's "variable")
        (None, ["", "x"], "string", None, False),  # else None is no string
        (7, [7], None, None, True),  # undocumented: compared by its own type
        ({"a": 1}, [{"a": [1]}], None, None, True),
    ],
)
def test_value_accepted(value, accepted, schema, items, ok):
    assert value_accepted(value, accepted, schema, items) is ok
