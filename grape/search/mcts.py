"""iTool's Monte Carlo tree search over step-level partial answers, for one question.

Each simulation (5 by default):

1. **select**: from the root, while the node has been expanded and is above the depth limit, go to the child
   of highest UCB (grape.search.tree);
2. **expand** the node reached, unless it ends an answer, sits at the depth limit, or was expanded before:
   sample ``samples`` continuations (3, ≤ 50 tokens, temperature 1.5) of its partial answer, cut each into
   steps (grape.search.steps) and hang each continuation under the node as a chain of nodes, one per step; a
   chain that would pass the depth limit (3) ends in one node holding the rest of its text. Each new node
   starts at its fast reward, its prior from its tokens' log-probs;
3. **roll out**: from that node go down to a leaf by highest V; an answer that has not ended there is finished
   by one more sampled continuation (not added to the tree);
4. **judge** the whole answer (the terminal reward) and **back it up** from the leaf to the root.

Departures from the official code (mcts_vllm.py), on purpose: the terminal reward judges the whole answer (the
official one grades the rollout's text alone, which a verifier cannot read); the rollout goes down to a leaf
and finishes the answer, where the official one stops after two steps; a node reached that cannot be expanded
is still rolled out and judged, so no simulation is lost; steps keep their text as sampled (no spaces added).

Several questions are searched together (`searches`): each search is a coroutine that yields the generator
calls it needs (`search_steps`), and the pending calls of the questions under way are sampled as one batch.

A finished search is kept as JSON (`search_record`, `search_from_record`): the tree, the judged answers with
their leaves' places, and the generator calls; pairs taken from a search read back are the search's own.
"""

from __future__ import annotations

from collections import abc
from dataclasses import dataclass, field
from typing import Any

from grape.search.generator import Continuation, Generator, Request, span_prior
from grape.search.rewards import Judge, fast_reward, gold_words
from grape.search.steps import FRAGMENTS_PER_STEP, SEPARATORS, split_steps, step_spans
from grape.search.tree import Node, backup, best_child, highest_value_child, node_from_record, node_record


@dataclass(frozen=True)
class SearchRules:
    simulations: int = 5
    samples: int = 3  # continuations sampled per expansion
    max_depth: int = 3  # the deepest level of the tree (the root is 0)
    separators: tuple[str, ...] = SEPARATORS
    per_step: int = FRAGMENTS_PER_STEP
    exploration: float = 1.0  # w in UCB


@dataclass(frozen=True)
class Rollout:
    text: str  # the whole answer judged
    finished: bool  # whether it ended (else the token limit cut it)
    reward: float
    leaf: Node  # the tree's last node on its path


@dataclass
class Search:
    root: Node
    rollouts: list[Rollout] = field(default_factory=list)
    generator_calls: int = 0


def search(prompt: Any, row: dict[str, Any], generator: Generator, judge: Judge, rules: SearchRules,
           seed: int = 0) -> Search:  # fmt: skip
    """The tree of one question (``row`` holds its gold ``answer``; ``prompt`` is what the generator continues).

    The generator's k-th call gets the seed ``seed + k``, so a search is reproducible."""
    ((_, found),) = searches([(prompt, row, seed)], generator, judge, rules)
    return found


def searches(questions: list[tuple[Any, dict[str, Any], int]], generator: Generator, judge: Judge,
             rules: SearchRules, together: int = 1) -> abc.Iterator[tuple[int, Search]]:  # fmt: skip
    """Search each (prompt, row, seed), ``together`` questions at a time: the pending generator calls of the
    questions under way go to the generator as one list (one batch). Yields (index, search) as each finishes.

    A question's search is the same whatever ran beside it, up to float rounding: its calls and their seeds are its
    own, and each continuation draws from its own stream (grape.search.row_sampling)."""
    waiting = list(range(len(questions)))[::-1]  # taken from the end: input order
    running: dict[int, tuple[abc.Generator, Request]] = {}
    while waiting or running:
        while waiting and len(running) < max(1, together):
            index = waiting.pop()
            steps = search_steps(*questions[index], judge, rules)
            running[index] = (steps, next(steps))  # a search's first simulation always expands the root
        order = list(running)
        answers = generator.sample([running[index][1] for index in order])
        for index, continuations in zip(order, answers, strict=True):
            steps = running[index][0]
            try:
                running[index] = (steps, steps.send(continuations))
            except StopIteration as finished:
                del running[index]
                yield index, finished.value


def search_steps(prompt: Any, row: dict[str, Any], seed: int, judge: Judge,
                 rules: SearchRules) -> abc.Generator[Request, list[Continuation], Search]:  # fmt: skip
    """One question's search as a coroutine: it yields each generator call it needs and is sent the call's
    continuations; it returns the search."""
    result = Search(Node())
    gold = gold_words(row["answer"])
    for _ in range(rules.simulations):
        node = select(result.root, rules)
        if not (node.finished or node.expanded or node.depth >= rules.max_depth):
            result.generator_calls += 1
            expansions = yield Request(prompt, node.text(), rules.samples, seed + result.generator_calls - 1)
            for continuation in expansions:
                add_chain(node, continuation, rules, row["answer"], gold)
            node.expanded = True
        leaf = node
        while leaf.children:
            leaf = highest_value_child(leaf)
        text, finished = leaf.text(), leaf.finished
        if not finished:
            result.generator_calls += 1
            (ending,) = yield Request(prompt, text, 1, seed + result.generator_calls - 1)
            text, finished = text + ending.text, ending.finished
        reward = judge(text, row)
        backup(leaf, reward)
        result.rollouts.append(Rollout(text, finished, reward, leaf))
    return result


def select(root: Node, rules: SearchRules) -> Node:
    """The node to expand: down from the root by UCB while the node is expanded and above the depth limit."""
    node = root
    while node.expanded and node.children and not node.finished and node.depth < rules.max_depth:
        node = best_child(node, rules.exploration)
    return node


def add_chain(node: Node, continuation: Continuation, rules: SearchRules, answer: list[Any],
              gold: set[str]) -> list[Node]:  # fmt: skip
    """Hang ``continuation`` under ``node`` as one node per step (the rest in one node at the depth limit)."""
    steps = split_steps(continuation.text, rules.separators, rules.per_step)
    room = rules.max_depth - node.depth
    if len(steps) > room:
        steps = [*steps[: room - 1], "".join(steps[room - 1 :])]
    chain, parent = [], node
    for index, (step, (start, end)) in enumerate(zip(steps, step_spans(steps), strict=True)):
        partial = parent.text() + step
        last = index == len(steps) - 1
        parent = parent.add(step, span_prior(continuation, start, end), fast_reward(step, partial, answer, gold),
                            finished=continuation.finished and last)  # fmt: skip
        chain.append(parent)
    return chain


def search_record(result: Search) -> dict[str, Any]:
    """``result`` as a JSON-ready object (each rollout's leaf by its place in the tree)."""
    rollouts = [{"text": r.text, "finished": r.finished, "reward": r.reward, "leaf": r.leaf.label()}
                for r in result.rollouts]  # fmt: skip
    return {"tree": node_record(result.root), "rollouts": rollouts, "generator_calls": result.generator_calls}


def search_from_record(record: dict[str, Any]) -> Search:
    """The search `search_record` wrote."""
    root = node_from_record(record["tree"])
    rollouts = [Rollout(r["text"], r["finished"], r["reward"], root.at(r["leaf"])) for r in record["rollouts"]]
    return Search(root, rollouts, record["generator_calls"])
