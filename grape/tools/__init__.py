"""Tool calls as a data type: tool documentation, calls and gold answers, a parser, a verifier, and
TL-Training's pieces (clean turns, key-token weights, the error-category reward). See docs/tools.md.

A base-like domain package: it imports the base (data, models, text, config, errors) and no stage; the
`tool-call` verifier (grape.verification) and the IRM reward (grape.rl) import it.
"""
