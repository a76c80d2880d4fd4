"""iTool's search side (docs/tools.md): the rows the model fits worst (`deficiency`), and a Monte Carlo tree
search over step-level partial answers whose sibling steps become preference pairs (`mcts`, grape.search.run).

The tree, UCB, backup, the splitter, the rewards and the pair rules are pure (tree.py, steps.py, rewards.py,
pairs.py, mcts.py with a `Generator` interface); the model enters through hf_generator.py and self_eval.py.
"""
