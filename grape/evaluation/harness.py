"""Comparable numbers: hand a model to EleutherAI's lm-evaluation-harness (`grape eval --harness lm-eval`).

grape's own `grape eval` asks in the template the model was trained with and judges with grape's verifiers;
published numbers (GSM8K 5-shot, ...) come from lm-eval's task definitions instead. This module builds the
one evaluation both ways: the arguments of ``lm_eval.simple_evaluate`` (run here when lm-eval is installed,
the `harness` extra) and the equivalent ``lm_eval`` command line, printed so that it can be run anywhere.

The model is lm-eval's ``hf`` model: ``pretrained`` is a directory transformers loads (grape's embedded
models and GGUF files are the safetensors directory grape converted them to); an sft OUTDIR that holds
only the PEFT adapter (``--save adapter``) is ``pretrained=<its base>,peft=<OUTDIR/adapter>``. The dtype
and device are resolved as grape resolves them, and written out, so that the command does the same
elsewhere. ``template: chat`` applies the tokenizer's chat template; any other template leaves the
prompts to the task (gsm8k's "Question: ...\\nAnswer:" is grape's ``paper`` format).
"""

from __future__ import annotations

import difflib
import json
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any

from grape.config import with_overrides
from grape.data.tables import write_sidecar
from grape.errors import GrapeError
from grape.evaluation.settings import HarnessSettings
from grape.models.trained_template import template_for_model

INSTALL = "pip install 'grape-fit[harness]'"


def lm_eval_installed() -> bool:
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        return False
    return True


def model_args(settings: HarnessSettings) -> dict[str, Any]:
    """lm-eval's ``hf`` model arguments for ``settings.model``: pretrained (and peft), dtype, device-free."""
    from grape.models.load import adapter_base, adapter_dir, resolve_device, resolve_dtype, resolve_model_dir

    adapter = adapter_dir(Path(settings.model).expanduser())
    if adapter is not None:
        args: dict[str, Any] = {"pretrained": adapter_base(adapter), "peft": str(adapter)}
    else:
        args = {"pretrained": resolve_model_dir(settings.model, settings.trust_remote_code)[0]}
    dtype = resolve_dtype(settings.dtype, resolve_device(settings.device))
    args["dtype"] = str(dtype).removeprefix("torch.")
    if settings.trust_remote_code:
        args["trust_remote_code"] = True
    return args


def resolved_device(settings: HarnessSettings) -> str:
    from grape.models.load import resolve_device

    return str(resolve_device(settings.device))


def lm_eval_argv(settings: HarnessSettings, args: dict[str, Any], device: str) -> list[str]:
    """The ``lm_eval`` command line of this evaluation, as a list (``shlex.join`` it to print)."""
    _check(settings)
    for key, value in args.items():
        if "," in str(value):  # lm-eval splits --model_args at every comma
            raise GrapeError(f"--model_args cannot hold {key}={value!r} (lm-eval splits it at the comma): "
                             "move or link the model to a path without one")  # fmt: skip
    joined = ",".join(f"{key}={value}" for key, value in args.items())
    argv = ["lm_eval", "--model", "hf", "--model_args", joined, "--tasks", ",".join(settings.tasks)]
    argv += ["--batch_size", str(settings.batch_size), "--device", device]
    if settings.num_fewshot is not None:
        argv += ["--num_fewshot", str(settings.num_fewshot)]
    if settings.limit is not None:
        argv += ["--limit", str(settings.limit)]
    if settings.template == "chat":
        argv.append("--apply_chat_template")
    if settings.include_path:
        argv += ["--include_path", settings.include_path]
    if settings.trust_remote_code:
        argv.append("--trust_remote_code")
    return argv


def lm_eval_command(settings: HarnessSettings) -> str:
    """The shell command that runs this evaluation with lm-eval's own command line."""
    return shlex.join(lm_eval_argv(settings, model_args(settings), resolved_device(settings)))


def run_lm_eval(
    output: str | Path | None = None, settings: HarnessSettings | None = None, **overrides: Any
) -> dict[str, Any]:
    """Run lm-eval's ``simple_evaluate`` on the model; return its results, written to ``output`` (JSON) if given.

    ``overrides`` set fields of `HarnessSettings`: ``run_lm_eval("gsm8k.json", model="runs/sft", tasks=["gsm8k"])``.
    """
    settings = with_overrides(HarnessSettings, settings, overrides)
    settings.template = template_for_model(settings.model, settings.template)
    _check(settings)
    if not lm_eval_installed():
        raise GrapeError(f"lm-eval is not installed: {INSTALL}")
    import lm_eval
    from lm_eval.tasks import TaskManager

    args, device = model_args(settings), resolved_device(settings)
    command = shlex.join(lm_eval_argv(settings, args, device))
    tasks = TaskManager(include_path=settings.include_path)
    check_task_names(settings.tasks, tasks)
    try:
        results = lm_eval.simple_evaluate(
            model="hf", model_args=args, tasks=list(settings.tasks), num_fewshot=settings.num_fewshot,
            batch_size=settings.batch_size, device=device, limit=settings.limit, task_manager=tasks,
            apply_chat_template=settings.template == "chat", log_samples=False,
        )  # fmt: skip
    except ConnectionError as exc:  # a task's data set (or metric) is on the Hub, and the Hub is out of reach
        raise GrapeError(f"lm-eval could not fetch what a task needs: {str(exc).splitlines()[0]}; run where the "
                         "Hugging Face Hub is reachable (the command above does the same), or give local task "
                         "files with --include-path") from exc  # fmt: skip
    if results is None:  # a non-zero rank under a distributed launch
        return {}
    kept = {key: value for key, value in results.items() if key != "samples"}
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(kept, indent=2, default=str) + "\n")
        write_sidecar(output, {"stage": "eval", "harness": "lm-eval", "lm_eval": lm_eval.__version__,
                               "settings": asdict(settings), "model_args": args, "device": device,
                               "command": command, "metrics": metric_rows(kept)})  # fmt: skip
    return kept


def check_task_names(names: list[str], index: Any) -> None:
    """GrapeError for a name that is no task, group or tag of ``index`` (an lm_eval TaskManager), nor a YAML file."""
    for name in names:
        if not index.match_tasks([name]) and not Path(name).is_file():  # a name, a glob, or a task's YAML file
            close = difflib.get_close_matches(name, index.all_tasks, n=3)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise GrapeError(f"unknown lm-eval task '{name}': {hint}`lm_eval ls tasks` lists them")


def metric_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per task, metric and filter: value, its standard error (None where lm-eval gives none), samples."""
    rows = []
    for task, metrics in (results.get("results") or {}).items():
        samples = ((results.get("n-samples") or {}).get(task) or {}).get("effective")
        for key, value in metrics.items():
            name, _, where = key.partition(",")  # lm-eval names a result "<metric>,<filter>" ("acc,none")
            if not where or name.endswith("_stderr") or not isinstance(value, int | float):
                continue  # alias, sample_len, ...
            stderr = metrics.get(f"{name}_stderr,{where}")
            stderr = stderr if isinstance(stderr, int | float) else None  # lm-eval writes "N/A" where it has none
            rows.append({"task": task, "metric": name, "filter": where, "value": value, "stderr": stderr,
                         "samples": samples})  # fmt: skip
    return rows


def _check(settings: HarnessSettings) -> None:
    if not settings.tasks:
        raise GrapeError("give the lm-eval tasks to run: --tasks gsm8k (`lm_eval ls tasks` lists them)")
    if settings.limit is not None and settings.limit < 1:
        raise GrapeError("limit must be at least 1")
