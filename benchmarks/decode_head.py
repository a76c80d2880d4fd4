"""Decoding steps on a CPU with the LM head in the orientation for a few rows (SmallBatchHead) against nn.Linear's.

  .venv/bin/python benchmarks/decode_head.py --rounds 5

For each --models entry and each --rows batch size: greedy `generate` of --new-tokens tokens (no early end) from
--rows copies of a --prompt-tokens-long prompt, on one loaded model whose output-embedding layer is switched
between the two classes (the same weight); rounds interleaved, the order rotated. Both must produce the same
tokens, or the script stops. Printed per case: ms per decoding step of each (median and spread over rounds), the
per-round ratio nn.Linear / SmallBatchHead, the load average before and after every timing, and the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import load_average, machine_state  # noqa: E402
from round_stats import per_round_ratios, ratio_refusal, rotated_order, spread_of  # noqa: E402

from grape.models.load import load_model  # noqa: E402
from grape.models.small_batch_head import SmallBatchHead  # noqa: E402

HEADS = {"few-rows": SmallBatchHead, "linear": nn.Linear}


def decode_ms(model, ids: torch.Tensor, new_tokens: int) -> tuple[float, torch.Tensor]:
    """ms per decoding step (the prompt's pass timed apart and left out) and the tokens generated."""
    with torch.inference_mode():
        started = time.perf_counter()
        model(input_ids=ids, logits_to_keep=1)  # the prompt's pass alone, to subtract
        prefill = time.perf_counter() - started
        started = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=0)  # fmt: skip
        seconds = time.perf_counter() - started - prefill
    return seconds / (new_tokens - 1) * 1000, out[:, ids.shape[1] :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2-135m-instruct,gemma-3-270m")
    parser.add_argument("--rows", default="3,8", help="batch sizes, comma-separated")
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    cases = []
    for name in args.models.split(","):
        loaded = load_model(name, "float32", "cpu")
        head = loaded.model.get_output_embeddings()
        prompt = torch.randint(1000, 5000, (1, args.prompt_tokens), generator=torch.Generator().manual_seed(0))
        for rows in (int(r) for r in args.rows.split(",")):
            ids = prompt.repeat(rows, 1)
            for kind in HEADS:  # warm-up
                head.__class__ = HEADS[kind]
                decode_ms(loaded.model, ids, 3)
            rounds = []
            for index in range(args.rounds):
                row, tokens = {}, {}
                for kind in rotated_order(list(HEADS), index):
                    head.__class__ = HEADS[kind]
                    before = load_average()
                    ms, tokens[kind] = decode_ms(loaded.model, ids, args.new_tokens)
                    row[kind] = {"ms_per_step": ms, "load_before": before, "load_after": load_average()}
                if not torch.equal(tokens["few-rows"], tokens["linear"]):
                    raise SystemExit(f"{name}, {rows} rows: the two heads decoded different tokens")
                rounds.append(row)
                print(json.dumps({"model": name, "rows": rows, "round": index, **row}), file=sys.stderr, flush=True)
            head.__class__ = SmallBatchHead
            few = [r["few-rows"]["ms_per_step"] for r in rounds]
            linear = [r["linear"]["ms_per_step"] for r in rounds]
            spreads = [spread_of(few), spread_of(linear), spread_of(per_round_ratios(linear, few))]
            cases.append({"model": name, "rows": rows, "rounds": rounds, "few_rows_ms": spreads[0].as_dict(),
                          "linear_ms": spreads[1].as_dict(), "speedup": spreads[2].as_dict(),
                          "ratio_refused": ratio_refusal(spreads), "tokens_equal": True})  # fmt: skip
            print(f"{name}, {rows} rows: few-rows head {spreads[0].brief()} ms/step, nn.Linear {spreads[1].brief()} "
                  f"ms/step, speed-up {spreads[2].brief()}x", file=sys.stderr, flush=True)  # fmt: skip
    summary = {"benchmark": "decode_head", "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
               "machine": machine_state(torch.device("cpu")), "cases": cases}  # fmt: skip
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
