"""Reinforcement learning with verifier rewards: PPO with a value head (ReFT)."""
