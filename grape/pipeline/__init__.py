"""Run a pipeline of named steps from one YAML file, each cached by a hash of its settings and inputs."""

from grape.pipeline.load import load_pipeline
from grape.pipeline.preview import Preview, preview_pipeline
from grape.pipeline.run import Outcome, run_pipeline

__all__ = ["Outcome", "Preview", "load_pipeline", "preview_pipeline", "run_pipeline"]
