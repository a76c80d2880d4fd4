"""How PPO losses average over tokens (torch-free: the CLI and settings name them without loading torch).

``sequence``: the mean over each answer's tokens, then over answers (ReFT); ``token``: the mean over all
answer tokens of the batch (TL-Training).
"""

AGGREGATIONS = ("sequence", "token")
