"""`--workers N`: one training spread over N processes on the CPU, each with its own torch threads.

PyTorch's operators on this project's small tensors leave part of a second thread idle (the man's clip on a 2-core
AVX2 machine: one thread 2.9 it/s, two threads 4.5, two workers of one thread 4.9; docs/training.md). So every batch
is split: all workers draw the same batch of frames (the same generator and seed), each renders and back-propagates
its own contiguous share, and one all-reduce over gloo sums the gradients (divided by N: the mean over the whole
batch), the loss terms and the drawn frames' squared errors (for --hard-frames). Every worker then takes the same
Adam step, so the run is the one-process run up to the order of floating-point sums; only worker 0 evaluates,
checkpoints, exports and shows progress. The clock that stops a --max-minutes run and schedules the learning rate
is worker 0's, shared at every step.

Worker 0 is the `dnp train` process; it starts the others (multiprocessing's spawn) and stops them when it ends,
also on Ctrl-C or an error. A worker that dies breaks the all-reduce, which then fails in every other one.
"""
from __future__ import annotations

import datetime
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.distributed as dist

# A collective waits this long for the other workers (worker 0's held-out checks and checkpoints take seconds).
TIMEOUT = datetime.timedelta(seconds=300)


class Group:
    """This process's place among the workers: rank, world size and the collectives the trainer needs."""

    def __init__(self, rank: int, world: int, init_file: Path):
        self.rank, self.world = rank, world
        dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                                timeout=TIMEOUT)
        self.closed = False

    @property
    def lead(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> Tuple[int, int]:
        """This worker's slice [lo, hi) of a batch of n frames (n is a multiple of the world size)."""
        b = n // self.world
        return self.rank * b, (self.rank + 1) * b

    def clock(self, seconds: float) -> float:
        """Worker 0's elapsed seconds, the same number in every worker."""
        t = torch.tensor([seconds], dtype=torch.float64)
        dist.broadcast(t, src=0)
        return float(t[0])

    def broadcast_weights(self, model: torch.nn.Module) -> None:
        """Every worker starts from worker 0's weights and buffers."""
        with torch.no_grad():
            for v in model.state_dict().values():
                if v.is_floating_point():
                    dist.broadcast(v, src=0)

    def reduce_step(self, params: List[torch.nn.Parameter], terms: torch.Tensor, frame_error: torch.Tensor,
                    lo: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """One all-reduce: the gradients and the loss terms averaged over the workers, and the whole batch's
        per-frame squared errors (this worker's are at [lo, lo + len(frame_error)) of a vector of the batch).
        The parameters that have gradients are the same in every worker (the same graph each step)."""
        grads = [p.grad for p in params if p.grad is not None]
        n_batch = len(frame_error) * self.world
        errors = torch.zeros(n_batch)
        errors[lo:lo + len(frame_error)] = frame_error
        flat = torch.cat([g.reshape(-1) for g in grads] + [terms.reshape(-1).float(), errors])
        dist.all_reduce(flat)
        k = 0
        for g in grads:
            g.copy_(flat[k:k + g.numel()].view_as(g)).div_(self.world)
            k += g.numel()
        mean_terms = flat[k:k + terms.numel()] / self.world
        return mean_terms, flat[k + terms.numel():]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if dist.is_initialized():
                dist.destroy_process_group()


class Workers:
    """Worker 0's handle on the others: started with the trainer's configuration and state, stopped by close()."""

    def __init__(self, world: int, threads: int, job: Dict[str, Any]):
        if world < 2:
            raise ValueError("Workers needs at least two workers")
        self.closed = False
        self.group: Optional[Group] = None
        self.dir = Path(tempfile.mkdtemp(prefix="dnp-workers-"))
        init_file = self.dir / "rendezvous"
        ctx = multiprocessing.get_context("spawn")
        self.procs: List[Any] = []
        for rank in range(1, world):
            p = ctx.Process(target=_worker_main, args=(rank, world, init_file, threads, job), daemon=True,
                            name=f"dnp-train-worker-{rank}")
            p.start()
            self.procs.append(p)
        try:
            self.group = Group(0, world, init_file)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(timeout=10)
        if self.group is not None:
            self.group.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _worker_main(rank: int, world: int, init_file: Path, threads: int, job: Dict[str, Any]) -> None:
    """Workers 1..N-1: the same trainer, quiet; stopped by worker 0 (SIGTERM) or by the end of the run."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; worker 0 decides
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    torch.set_num_threads(threads)
    from .trainer import build_worker_trainer  # after the threads are set
    group = Group(rank, world, init_file)
    try:
        trainer = build_worker_trainer(job, group)
        trainer.run()
    except RuntimeError as err:  # e.g. worker 0 failed and left the all-reduce: its own error is the one to read
        sys.stderr.write(f"train: worker {rank} stopped: {err}\n")
    finally:
        group.close()
