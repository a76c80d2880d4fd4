"""Test-time adaptation for domain generalisation: ITTA (Chen et al., CVPR 2023) and its baselines.

A vision method on its own: it shares only settings I/O (grape.config) and reporting (grape.console,
grape.data.tables) with the rest of grape. Entry point: `grape.tta.run.tta` (command `grape tta`).
"""
