"""Frozen Lake as text: maps as prompts, moves as answers, and the real environment as the judge.

A map is gymnasium's own (``generate_random_map``: S start, F frozen, H hole, G goal, a path guaranteed); its
prompt is the rows, one per line, and a final newline. An answer is a string of moves, one letter each:
L D R U, gymnasium's actions 0 1 2 3. A move off the grid leaves the agent where it is, as in the environment.

Training paths are the shortest-path policy with noise: at each step, with probability ``noise``, a random
*safe* move (one that changes the cell and does not enter a hole) instead of the shortest-path one, after which
the shortest path from the new cell takes over again. Every training path reaches the goal; some take detours.
The shortest-path move is unique per cell: among the moves that reduce the distance to G, the first in the
order D R L U.

A model's answer is judged by playing it in ``gymnasium.make("FrozenLake-v1", desc=rows, is_slippery=False)``.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence

MOVES = "LDRU"  # gymnasium's FrozenLake actions 0..3
STEP = {"L": (0, -1), "D": (1, 0), "R": (0, 1), "U": (-1, 0)}
PREFERENCE = "DRLU"  # the tie-break among shortest-path moves


def random_map(size: int, frozen: float, seed: int) -> tuple[str, ...]:
    """One map of gymnasium's generator (a path from S to G exists), as a tuple of row strings."""
    from gymnasium.envs.toy_text.frozen_lake import generate_random_map

    return tuple(generate_random_map(size=size, p=frozen, seed=seed))


def prompt_text(rows: Sequence[str]) -> str:
    return "".join(row + "\n" for row in rows)


def find(rows: Sequence[str], mark: str) -> tuple[int, int]:
    for r, row in enumerate(rows):
        if mark in row:
            return r, row.index(mark)
    raise ValueError(f"no {mark!r} on the map")


def cell_of(rows: Sequence[str], cell: tuple[int, int]) -> str:
    return rows[cell[0]][cell[1]]


def moved(rows: Sequence[str], cell: tuple[int, int], move: str) -> tuple[int, int]:
    """The cell a move leads to (the same cell at the edge of the grid)."""
    r, c = cell[0] + STEP[move][0], cell[1] + STEP[move][1]
    return (r, c) if 0 <= r < len(rows) and 0 <= c < len(rows[0]) else cell


def distances_to_goal(rows: Sequence[str]) -> dict[tuple[int, int], int]:
    """Breadth-first distances from every cell that can reach G without crossing a hole."""
    goal = find(rows, "G")
    dist, queue = {goal: 0}, deque([goal])
    while queue:
        cell = queue.popleft()
        for move in MOVES:
            prev = moved(rows, cell, move)  # moves are reversible on a grid: neighbours of cell
            if prev not in dist and cell_of(rows, prev) != "H":
                dist[prev] = dist[cell] + 1
                queue.append(prev)
    return dist


def shortest_move(rows: Sequence[str], cell: tuple[int, int], dist: dict[tuple[int, int], int]) -> str:
    return next(m for m in PREFERENCE if dist.get(moved(rows, cell, m), 10**9) == dist[cell] - 1)


def noisy_path(rows: Sequence[str], noise: float, rng: random.Random, limit: int) -> str:
    """Moves from S to G: the shortest-path policy with a random safe move at probability ``noise``."""
    dist = distances_to_goal(rows)
    cell, path = find(rows, "S"), []
    while cell_of(rows, cell) != "G" and len(path) < limit:
        safe = [m for m in MOVES if moved(rows, cell, m) != cell and cell_of(rows, moved(rows, cell, m)) != "H"]
        move = rng.choice(safe) if rng.random() < noise else shortest_move(rows, cell, dist)
        path.append(move)
        cell = moved(rows, cell, move)
    if cell_of(rows, cell) != "G":  # the limit was reached on detours: finish on the shortest path
        while cell_of(rows, cell) != "G":
            move = shortest_move(rows, cell, dist)
            path.append(move)
            cell = moved(rows, cell, move)
    return "".join(path)


def play(rows: Sequence[str], answer: str) -> dict:
    """Play ``answer`` in the real environment. Returns success, the steps taken and how it ended
    (goal | hole | stopped: the moves ran out on frozen ice | invalid: a character that is not a move)."""
    import gymnasium

    env = gymnasium.make("FrozenLake-v1", desc=list(rows), is_slippery=False)
    env.reset(seed=0)
    try:
        for steps, char in enumerate(answer, start=1):
            if char not in MOVES:
                return {"success": False, "steps": steps - 1, "end": "invalid"}
            _, reward, terminated, truncated, _ = env.step(MOVES.index(char))
            if terminated:
                return {"success": reward > 0, "steps": steps, "end": "goal" if reward > 0 else "hole"}
            if truncated:
                break
        return {"success": False, "steps": len(answer), "end": "stopped"}
    finally:
        env.close()
