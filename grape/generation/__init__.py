"""Gather candidate responses: sample from several generators (hf, openai, vllm) into the candidate pool."""

from grape.generation.backend import GeneratorSpec, Sampling
from grape.generation.generate import generate
from grape.generation.settings import GenerateSettings

__all__ = ["GenerateSettings", "GeneratorSpec", "Sampling", "generate"]
