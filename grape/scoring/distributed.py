"""`grape score --ray`: the same scoring as a Ray Data job over an actor pool, one model per actor.

The driver (this process) reads and validates the input and works out from the parts what is left
(resume.py), exactly as the single-process scorer does. Each pending chunk (whole instructions, so
prefix sharing works) becomes one row of a Ray dataset; `map_batches` with a callable class scores the
rows in a pool of actors that each load the model once; the outcomes stream back to the driver, which
saves each chunk as a part the moment it is complete and finally assembles the table. Only the driver
touches files: the workers need grape and the model (at the same path on every node), nothing else.

A worker that dies is restarted by Ray and its chunk is retried; a killed driver is resumed by running
the same command again.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from grape.console import console, print_table
from grape.errors import GrapeError
from grape.models.fingerprint import fingerprint_method, model_fingerprint
from grape.models.load import quiet_transformers, resolve_dtype, resolve_model_dir
from grape.scoring.parts import PART_SCHEMA
from grape.scoring.progress import scoring_progress
from grape.scoring.resume import Chunk, ScoreJob
from grape.scoring.score_worker import ScoreWorker
from grape.scoring.settings import ScoreSettings
from grape.scoring.template_note import note_chat_template
from grape.text import Renderer


@dataclass
class RaySettings:
    address: str | None = None  # None: start Ray on this machine; "auto" or host:port: join a running cluster
    workers: int | None = None  # None: one per GPU (gpus_per_worker each), or one if the cluster has no GPU
    gpus_per_worker: float | None = None  # None: 1 when the cluster has GPUs, else 0 (CPU workers)


@dataclass
class _Pool:
    workers: int
    gpus: float  # per worker
    cpus: float  # per worker

    @property
    def device(self) -> str:
        return "cuda" if self.gpus > 0 else "cpu"


def score_on_ray(
    input: str | Path, output: str | Path, settings: ScoreSettings | None = None, cluster: RaySettings | None = None
) -> list[dict[str, Any]]:
    """Score ``input`` on a Ray cluster into ``output``: the same table, row for row, as `score`."""
    settings, cluster = settings or ScoreSettings(), cluster or RaySettings()
    ray = _import_ray()
    started_here = not ray.is_initialized()
    pool: _Pool | None = None
    identity: dict[str, Any] = {}

    def model_and_dtype() -> tuple[str, str]:
        nonlocal pool
        _connect(ray, cluster.address)  # the pool's device (CPU or GPU) decides what dtype "auto" means
        pool = _pool_shape(ray, cluster)
        dtype = _worker_dtype(settings.dtype, pool.device)
        fingerprint = model_fingerprint(settings.model)
        # the workers load the model, not the driver: it records what they will load
        identity.update(spec=settings.model, dtype=dtype, fingerprint=fingerprint,
                        fingerprint_method=fingerprint_method(fingerprint))  # fmt: skip
        return fingerprint, dtype

    try:
        with ScoreJob(input, output, settings, model_and_dtype) as job:
            assert pool is not None
            run: dict[str, Any] = {"workers": pool.workers, "gpus_per_worker": pool.gpus, "cpus_per_worker": pool.cpus}
            if job.pending:
                _check_renderer(settings)
                worker_settings = replace(settings, device=pool.device, dtype=identity["dtype"])
                try:
                    run.update(_score_pending(ray, job, worker_settings, pool))
                except ray.exceptions.RayError as exc:
                    mistake = _grape_error_in(exc)
                    if mistake is None:
                        raise
                    raise GrapeError(f"on a Ray worker: {mistake}") from exc
            return job.finish(identity, {"ray": run})
    finally:
        if started_here and ray.is_initialized():
            ray.shutdown()


def _score_pending(ray, job: ScoreJob, settings: ScoreSettings, pool: _Pool) -> dict[str, Any]:
    """Run the Ray Data job over the pending chunks; save each chunk as a part as soon as it is whole."""
    from ray.data import ActorPoolStrategy

    rows = [{"chunk": c.index, "work": json.dumps([i.to_dict() for i in c.items])} for c in job.pending]
    scored = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        ScoreWorker,
        fn_constructor_kwargs={"settings": settings, "threads": int(pool.cpus) if pool.gpus == 0 else None},
        batch_size=1,  # one chunk per call: a chunk is the unit that is saved, retried and resumed
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=pool.workers),
        num_cpus=pool.cpus,
        num_gpus=pool.gpus,
    )
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    started = time.time()
    with scoring_progress(job.total_candidates, job.done_candidates, f"· {pool.workers} workers") as advance:
        for chunk, table in _whole_chunks(scored.iter_batches(batch_size=None, batch_format="pyarrow"), job.pending):
            job.record(chunk, table.select(PART_SCHEMA.names))
            tokens = table.column("chunk_tokens")[0].as_py()
            tallies[table.column("worker")[0].as_py()].add(
                table.num_rows, tokens, table.column("chunk_seconds")[0].as_py()
            )
            advance(table.num_rows, tokens)
    wall = time.time() - started
    _print_summary(tallies, wall)
    return {"seconds": round(wall, 2), "per_worker": {worker: asdict(t) for worker, t in tallies.items()}}


@dataclass
class _Tally:
    parts: int = 0
    candidates: int = 0
    tokens: int = 0
    busy_s: float = 0.0

    def add(self, candidates: int, tokens: int, seconds: float) -> None:
        self.parts, self.candidates = self.parts + 1, self.candidates + candidates
        self.tokens, self.busy_s = self.tokens + tokens, self.busy_s + seconds


def _whole_chunks(batches: Iterable[pa.Table], pending: list[Chunk]) -> Iterator[tuple[Chunk, pa.Table]]:
    """Yield each chunk's outcomes once all its rows have arrived (Ray may hand them over in pieces)."""
    chunks = {chunk.index: chunk for chunk in pending}
    received: dict[int, list[pa.Table]] = defaultdict(list)
    for batch in batches:
        for index in pc.unique(batch.column("chunk")).to_pylist():
            received[index].append(batch.filter(pc.equal(batch.column("chunk"), index)))
            if sum(t.num_rows for t in received[index]) >= chunks[index].n_candidates:
                yield chunks[index], pa.concat_tables(received.pop(index))


def _print_summary(tallies: dict[str, _Tally], wall: float) -> None:
    rows = [(w, t.parts, t.candidates, t.tokens, f"{t.busy_s:.1f}") for w, t in sorted(tallies.items())]
    print_table("Ray workers", ["worker (host:pid)", "parts", "candidates", "tokens", "busy s"], rows)
    candidates = sum(t.candidates for t in tallies.values())
    console.print(
        f"scored {candidates} candidates in {wall:.1f} s on {len(tallies)} worker processes "
        f"({candidates / max(wall, 1e-9):,.1f} candidates/s)"
    )


def _check_renderer(settings: ScoreSettings) -> None:
    """Catch a template or EOS mistake here, in one line, rather than as every worker's failure."""
    if Path(settings.model).suffix == ".gguf":
        return  # the tokenizer is inside the GGUF: reading it here means converting it; the workers will tell
    from transformers import AutoTokenizer

    quiet_transformers()
    target, _ = resolve_model_dir(settings.model, settings.trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(target, trust_remote_code=settings.trust_remote_code)
    except OSError:
        return  # not readable from the driver (a Hub id without network): the workers will tell
    Renderer(tokenizer, settings.template, settings.eos)
    note_chat_template(tokenizer, settings.template, settings.model)


def _grape_error_in(exc: BaseException) -> str | None:
    """The user mistake behind a Ray error (a worker's GrapeError), if there is one.

    Ray wraps a worker's exception in its own; an actor that failed in its constructor keeps only the
    text of the original, so the text is searched too."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, GrapeError):
            return str(seen)
        seen = getattr(seen, "cause", None) or seen.__cause__
    found = re.findall(r"grape\.errors\.\w+: (.+)", str(exc))
    return found[-1].strip() if found else None


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise GrapeError("--ray needs Ray Data: pip install -e '.[ray]' in grape's repository") from exc
    return ray


def _connect(ray, address: str | None) -> None:
    if not ray.is_initialized():
        quiet = {"logging_level": logging.ERROR, "include_dashboard": False}  # grape reports progress itself
        _check_reachable(address)
        try:
            ray.init(address=address, **quiet) if address else ray.init(**quiet)
        except ConnectionError as exc:
            raise GrapeError(f"cannot reach the Ray cluster at '{address}': {exc}") from exc
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # grape shows one bar for the whole job
    context.print_on_execution_start = False


def _check_reachable(address: str | None) -> None:
    """Ray retries an unreachable head for minutes, in log lines; a HOST:PORT that refuses is said at once."""
    match = re.fullmatch(r"([\w.\-]+):(\d+)", address or "")
    if not match:
        return  # None (start Ray here), "auto", or a ray:// address: Ray's own checks answer quickly
    try:
        socket.create_connection((match[1], int(match[2])), timeout=10).close()
    except OSError as exc:
        raise GrapeError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): is `ray start --head` running there?"
        ) from exc


def _pool_shape(ray, cluster: RaySettings) -> _Pool:
    resources = ray.cluster_resources()
    cluster_gpus, cluster_cpus = resources.get("GPU", 0.0), resources.get("CPU", 1.0)
    gpus = cluster.gpus_per_worker if cluster.gpus_per_worker is not None else (1.0 if cluster_gpus else 0.0)
    if gpus < 0 or gpus > 1:
        raise GrapeError(
            f"--gpus-per-worker {gpus}: a worker holds one model replica on at most one GPU (a fraction "
            "shares a GPU between replicas); a model split over several GPUs is not supported yet"
        )
    if gpus > cluster_gpus:
        raise GrapeError(f"--gpus-per-worker {gpus}, but the Ray cluster has {cluster_gpus:g} GPUs")
    workers = cluster.workers or (int(cluster_gpus // gpus) if gpus else 1)
    if workers < 1:
        raise GrapeError(f"--workers must be at least 1, not {workers}")
    if gpus == 0 and workers > cluster_cpus:
        raise GrapeError(f"--workers {workers} CPU workers, but the Ray cluster has {cluster_cpus:g} CPUs")
    if gpus * workers > cluster_gpus:
        console.print(f"[yellow]note:[/] {workers} workers × {gpus:g} GPUs is more than the cluster's {cluster_gpus:g}")
    # GPU workers need a core each to feed the GPU; CPU workers share the cluster's cores between them.
    cpus = 1.0 if gpus else float(max(1, int(cluster_cpus // workers)))
    return _Pool(workers, gpus, cpus)


def _worker_dtype(dtype: str, device: str) -> str:
    """The dtype the workers load, decided here (the driver may have no GPU): auto is bf16 on GPUs."""
    if dtype == "auto":
        return "bfloat16" if device == "cuda" else "float32"
    import torch

    return str(resolve_dtype(dtype, torch.device("cpu"))).removeprefix("torch.")
