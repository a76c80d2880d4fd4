"""The naive reference scorer the fast engine must agree with: one pair at a time, full forward,
full log_softmax over the vocabulary, gather. Deliberately simple; used only by tests."""

from __future__ import annotations

import torch


@torch.inference_mode()
def naive_sum_logprob(model, prompt: list[int], response: list[int]) -> float:
    ids = torch.tensor([prompt + response], device=model.device)
    logits = model(input_ids=ids).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    p = len(prompt)
    rows = torch.arange(p - 1, p - 1 + len(response), device=model.device)
    return float(logprobs[rows, ids[0, p:]].double().sum())


def whole_text_ids(tokenizer, template: str, instruction: str, response: str) -> list[int]:
    """The ids the tokenizer gives for the whole text, written out plainly for each template.

    paper / raw: the text with the tokenizer's own special tokens, then EOS. chat: the conversation with
    the assistant's answer rendered by the chat template, up to and including its last end-of-turn token.
    """
    if template == "chat":
        turns = [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]
        ids = tokenizer(tokenizer.apply_chat_template(turns, tokenize=False), add_special_tokens=False)["input_ids"]
        end_of_turn = ids[-2] if tokenizer.decode(ids[-1:]).isspace() else ids[-1]  # "<|im_end|>" then "\n"
        return ids[: len(ids) - ids[::-1].index(end_of_turn)]
    text = f"Question: {instruction}\nAnswer: {response}" if template == "paper" else instruction + response
    return list(tokenizer(text)["input_ids"]) + [tokenizer.eos_token_id]
