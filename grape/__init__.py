"""grape: fit-aware post-training. Score candidate responses with the target model, keep the best fit."""

__version__ = "0.1.0"
