"""Judge a model's calls against the gold calls: right, or what is wrong with them.

Exact match under BFCL's AST rules (`values.value_accepted`): the same number of calls, each gold call
matched by one call of the same name whose arguments are all documented and expected, with every
required (and every non-optional gold) argument given and each value accepted; parallel calls match in
any order. An empty gold list means no call is right (BFCL's irrelevance): then any text without a
readable call is right, as in BFCL.

Where BFCL stops at the first error, the judgement collects every problem of the best pairing of calls to
gold calls, because TL-Training's reward combines them (`irm.py`). Two departures, both documented in
docs/tools.md: positional arguments bind to the documented parameters in order (BFCL drops them), and the
pairing of parallel calls is the best one (BFCL pairs greedily, which can miss a match that exists).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grape.tools.calls import OPTIONAL, GoldCall, ToolCall, bind
from grape.tools.parse import Parsed
from grape.tools.tool_docs import Tool
from grape.tools.values import value_accepted

UNPARSABLE = "unparsable"
HALLUCINATED_TOOL = "hallucinated tool"
WRONG_TOOL = "wrong tool"
MISSING_CALL = "missing call"
EXTRA_CALL = "extra call"
HALLUCINATED_PARAMETER = "hallucinated parameter"
REDUNDANT_PARAMETER = "redundant parameter"
MISSING_PARAMETER = "missing parameter"
WRONG_VALUE = "wrong value"
CALLED_WHEN_NO_CALL = "called when no call was right"
# The order in which a judgement lists its problems (roughly: most severe first).
PROBLEMS = (UNPARSABLE, HALLUCINATED_TOOL, WRONG_TOOL, MISSING_CALL, EXTRA_CALL, CALLED_WHEN_NO_CALL,
            HALLUCINATED_PARAMETER, REDUNDANT_PARAMETER, MISSING_PARAMETER, WRONG_VALUE)  # fmt: skip
_PARAMETER_PROBLEMS = (HALLUCINATED_PARAMETER, REDUNDANT_PARAMETER, MISSING_PARAMETER)
_UNMATCHED = 1000  # the pairing's cost of a gold call without a call, or a call without a gold call
_MAX_EXACT_PAIRING = 12  # more calls than this are paired greedily


@dataclass(frozen=True)
class Judgement:
    correct: bool | None  # None: nothing to judge against (no gold answer)
    problems: dict[str, list[str]] = field(default_factory=dict)  # category -> details, e.g. "get_weather.city"

    @property
    def reason(self) -> str:
        """``right``, or the categories then their details: ``missing parameter: get_weather.city``."""
        if self.correct is None:
            return next(iter(self.problems.get("unknown", [])), "no gold answer")
        if self.correct:
            return "right"
        names = [p for p in PROBLEMS if p in self.problems]
        if len(names) == 1:
            return f"{names[0]}: {', '.join(self.problems[names[0]])}"[:300]
        details = "; ".join(f"{p} {', '.join(self.problems[p])}" for p in names)
        return f"{' + '.join(names)}: {details}"[:300]


def unknown(reason: str) -> Judgement:
    return Judgement(None, {"unknown": [reason]})


def judge_calls(parsed: Parsed, gold: list[GoldCall], tools: list[Tool]) -> Judgement:
    """The judgement of the calls read from a text (``parsed``) against ``gold`` (``[]``: no call is right)."""
    if not gold:
        if parsed.calls:
            return Judgement(False, {CALLED_WHEN_NO_CALL: [c.name for c in parsed.calls]})
        return Judgement(True)
    if parsed.error is not None:
        return Judgement(False, {UNPARSABLE: [parsed.error]})
    documented = {tool.name: tool for tool in tools}
    checks = [[check_call(call, g, documented) for call in parsed.calls] for g in gold]
    pairs = _best_pairing([[cost(c) for c in row] for row in checks])
    problems: dict[str, list[str]] = {}
    for g, call in pairs:
        for category, details in checks[g][call].items():
            problems.setdefault(category, []).extend(details)
    matched_gold, matched_calls = {g for g, _ in pairs}, {c for _, c in pairs}
    for index, g in enumerate(gold):
        if index not in matched_gold:
            problems.setdefault(MISSING_CALL, []).append(g.name)
    for index, call in enumerate(parsed.calls):
        if index not in matched_calls:
            problems.setdefault(EXTRA_CALL, []).append(call.name)
    return Judgement(not problems, problems)


def check_call(call: ToolCall, gold: GoldCall, documented: dict[str, Tool]) -> dict[str, list[str]]:
    """The problems of ``call`` as the answer ``gold`` asks for: {} when it is right."""
    if call.name != gold.name:
        known = not documented or call.name in documented
        return {WRONG_TOOL if known else HALLUCINATED_TOOL: [f"{call.name} for {gold.name}"]}
    tool = documented.get(gold.name)
    arguments, unbound = bind(call, tool)
    problems: dict[str, list[str]] = {}

    def add(category: str, parameter: str) -> None:
        problems.setdefault(category, []).append(f"{call.name}.{parameter}")

    for parameter in unbound:
        add(HALLUCINATED_PARAMETER, parameter)
    for parameter in tool.required if tool is not None else ():
        if parameter not in arguments:
            add(MISSING_PARAMETER, parameter)
    for parameter, value in arguments.items():
        if parameter in unbound:
            continue
        if parameter not in gold.accepted:
            known = tool is not None and parameter in tool.properties
            add(REDUNDANT_PARAMETER if known else HALLUCINATED_PARAMETER, parameter)
        elif tool is not None and parameter not in tool.properties:
            add(HALLUCINATED_PARAMETER, parameter)
        else:
            schema_type = tool.type_of(parameter) if tool is not None else None
            item_type = tool.item_type_of(parameter) if tool is not None else None
            if not value_accepted(value, gold.accepted[parameter], schema_type, item_type):
                add(WRONG_VALUE, f"{parameter}={value!r:.60}")
    for parameter, values in gold.accepted.items():
        needed = OPTIONAL not in values and (tool is None or parameter not in tool.required)
        if needed and parameter not in arguments:
            add(MISSING_PARAMETER, parameter)
    return problems


def cost(problems: dict[str, list[str]]) -> int:
    """How far a call is from a gold call, for the pairing: a wrong name 100, a parameter problem 10, a value 1."""
    if HALLUCINATED_TOOL in problems or WRONG_TOOL in problems:
        return 100
    return 10 * sum(len(problems.get(p, [])) for p in _PARAMETER_PROBLEMS) + len(problems.get(WRONG_VALUE, []))


def _best_pairing(costs: list[list[int]]) -> list[tuple[int, int]]:
    """(gold index, call index) pairs of least total cost, a gold call or a call left over costing `_UNMATCHED`.

    Exact (dynamic programming over the subsets of calls) up to `_MAX_EXACT_PAIRING` calls, greedy beyond.
    """
    n, m = len(costs), len(costs[0]) if costs else 0
    if m > _MAX_EXACT_PAIRING:
        return _greedy_pairing(costs)
    best: dict[int, tuple[int, list[tuple[int, int]]]] = {0: (0, [])}  # used calls -> (cost, pairs)
    for g in range(n):
        step: dict[int, tuple[int, list[tuple[int, int]]]] = {}
        for used, (total, pairs) in best.items():
            options = [(used, total + _UNMATCHED, pairs)]
            options += [(used | 1 << c, total + costs[g][c], [*pairs, (g, c)]) for c in range(m) if not used >> c & 1]
            for key, value, chosen in options:
                if key not in step or value < step[key][0]:
                    step[key] = (value, chosen)
        best = step
    _, pairs = min(((total + _UNMATCHED * (m - used.bit_count()), pairs) for used, (total, pairs) in best.items()),
                   key=lambda option: option[0])  # fmt: skip
    return pairs


def _greedy_pairing(costs: list[list[int]]) -> list[tuple[int, int]]:
    taken: set[int] = set()
    pairs = []
    for g, row in enumerate(costs):
        free = [c for c in range(len(row)) if c not in taken]
        if free:
            c = min(free, key=lambda index: row[index])
            taken.add(c)
            pairs.append((g, c))
    return pairs
