"""A small selection and fast trainer settings shared by the SFT tests (tiny models, seconds per run)."""

ROWS = [
    {"id": "a", "prompt": "What is 2 + 3?", "completion": "2 + 3 = 5. The answer is 5."},
    {"id": "b", "prompt": "Name a primary colour.", "completion": "Blue is a primary colour."},
    {"id": "c", "prompt": "What is 10 times 10?", "completion": "10 * 10 = 100. The answer is 100."},
    {"id": "d", "messages": [{"role": "user", "content": "Say hello."}, {"role": "assistant", "content": "Hello!"}]},
]
FAST = dict(batch_size=4, lr=1e-2, lr_scheduler="constant", precision="fp32", logging_steps=1, seed=0)


def fresh(base):
    """An untrained copy of a loaded model (sft trains the model it is given in place)."""
    import copy

    from grape.models.load import LoadedModel

    return LoadedModel(copy.deepcopy(base.model), base.tokenizer, dict(base.identity))
