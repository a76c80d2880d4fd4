"""Run the stages from one YAML file, each cached by a hash of its settings and inputs."""

from grape.pipeline.run import Outcome, run_pipeline

__all__ = ["Outcome", "run_pipeline"]
