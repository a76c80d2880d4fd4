"""Text rendering shared by every stage: a prompt in a template, and the token ids of prompt + response."""

from grape.text.render import Encoded, Renderer
from grape.text.templates import BUILTIN_TEMPLATES, PromptError

__all__ = ["BUILTIN_TEMPLATES", "Encoded", "PromptError", "Renderer"]
