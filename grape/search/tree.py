"""The search tree of partial answers: nodes, iTool's UCB, and the backup of a reward.

A node is one step of an answer; the text of the path from the root is the partial answer. As in the official
code (mcts_vllm.py), a node's value V starts at its fast reward and every reward backed up through it is added:
V is a sum, N the number of rewards added, and selection reads V/(N+1) (the +1 counts the fast reward).

    UCB(child) = V/(N+1) + w · P · sqrt(ln N_parent / (N+1))

P is the child's prior: exp of the mean log-probability of its step's tokens under the model. Before the
parent's first backup (N_parent = 0, where ln is -inf) the exploration term is taken as 0.

A tree is kept as nested JSON objects (`node_record`, `node_from_record`): a node's fields and its children in
order, so that a tree read back has the same places (`Node.label`), texts, values and visits, and the same pairs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Node:
    step: str = ""  # this node's text (the root's is empty)
    prior: float = 1.0  # P
    value: float = 0.0  # V: the fast reward plus every reward backed up through the node
    visits: int = 0  # N
    finished: bool = False  # the answer ends with this step (the model wrote its end marker after it)
    parent: Node | None = field(default=None, repr=False)
    children: list[Node] = field(default_factory=list, repr=False)
    expanded: bool = False  # continuations were sampled from this node (a node of a chain was not)

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    def add(self, step: str, prior: float, value: float, finished: bool = False) -> Node:
        child = Node(step, prior, value, finished=finished, parent=self)
        self.children.append(child)
        return child

    def path(self) -> list[Node]:
        """The nodes from the root to this one, both included."""
        nodes, node = [], self
        while node is not None:
            nodes.append(node)
            node = node.parent
        return nodes[::-1]

    def text(self) -> str:
        """The partial answer: the steps from the root to this node, concatenated."""
        return "".join(n.step for n in self.path())

    def label(self) -> str:
        """The node's place: the child indices from the root, ``0.2.1`` (the root is ``root``)."""
        indices = [str(n.parent.children.index(n)) for n in self.path()[1:] if n.parent is not None]
        return ".".join(indices) or "root"

    def at(self, label: str) -> Node:
        """The node at ``label`` below this one (the inverse of `label` from the root)."""
        node = self
        for index in () if label == "root" else label.split("."):
            node = node.children[int(index)]
        return node

    def walk(self) -> Iterator[Node]:
        """This node and its descendants, depth first, children in the order they were added."""
        yield self
        for child in self.children:
            yield from child.walk()


def ucb(child: Node, parent_visits: int, weight: float) -> float:
    """iTool's selection score of ``child`` under a parent visited ``parent_visits`` times."""
    exploit = child.value / (child.visits + 1)
    if parent_visits <= 0:
        return exploit
    return exploit + weight * child.prior * math.sqrt(math.log(parent_visits) / (child.visits + 1))


def best_child(node: Node, weight: float) -> Node:
    """The child of highest UCB (the first of equals)."""
    return max(node.children, key=lambda child: ucb(child, node.visits, weight))


def highest_value_child(node: Node) -> Node:
    """The child of highest V (the first of equals): how a rollout descends the tree."""
    return max(node.children, key=lambda child: child.value)


def backup(node: Node, reward: float) -> None:
    """Add ``reward`` to V and one visit to N of ``node`` and of every node above it."""
    for n in node.path():
        n.visits += 1
        n.value += reward


def node_record(node: Node) -> dict[str, Any]:
    """``node`` and everything under it as nested JSON-ready objects (JSON keeps a float's every digit)."""
    return {"step": node.step, "prior": node.prior, "value": node.value, "visits": node.visits,
            "finished": node.finished, "expanded": node.expanded,
            "children": [node_record(child) for child in node.children]}  # fmt: skip


def node_from_record(record: dict[str, Any], parent: Node | None = None) -> Node:
    """The tree `node_record` wrote, hung under ``parent``."""
    node = Node(record["step"], record["prior"], record["value"], record["visits"], record["finished"],
                parent=parent, expanded=record["expanded"])  # fmt: skip
    node.children = [node_from_record(child, node) for child in record["children"]]
    return node
