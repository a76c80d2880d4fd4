"""Reward-guided decoding: Transfer Q* (direct and indirect), its baselines ARGS and best-of-n, and greedy.

The stage function is `grape.decoding.decode.decode`; `Decoder` answers one prompt with models already loaded
(what `grape eval` and experiments use). See docs/decoding.md.
"""
