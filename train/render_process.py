"""The PyTorch render process: the server's `--device torch` renderer on a PyTorch GPU host.

    python3 -m train.render_process --model AVATAR/avatar.onnx [--device cuda] [--autocast off|fp16|bf16] [--no-graphs]

Runs the avatar's own ONNX graph with PyTorch (train/onnx_torch.py), with one CUDA graph per batch size (captured
at that size's first run), and talks to its parent (server/src/render/render-worker.mjs) over stdin / stdout:

  parent → process   uint32 op, uint32 batch, then batch × N float32 (op 1: render; op 2: close, no data)
  process → parent   uint32 type, uint32 length, then `length` bytes:
                     type 1: JSON, first {"type": "ready", device, inputs, outputs, torch, gpu} or
                             {"type": "error", "message"} (then the process exits 2);
                             after a failed run {"type": "run-error", "message"}
                     type 2: a result: float64 ms, uint32 dtype (0 float32, 1 uint8), uint32 ndim, ndim × uint32
                             dims, then the output's bytes
Little-endian throughout. Log lines go to stderr.
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from typing import Any, BinaryIO, Callable, Dict, Optional

OP_RUN, OP_CLOSE = 1, 2
MSG_JSON, MSG_RESULT = 1, 2
MAX_BATCH = 256


def send(out: BinaryIO, kind: int, *parts: Any) -> None:
    """One message: its header, then the parts (bytes or buffers, written without joining them)."""
    out.write(struct.pack("<II", kind, sum(memoryview(p).nbytes for p in parts)))
    for p in parts:
        out.write(p)
    out.flush()


def send_json(out: BinaryIO, obj: Dict[str, Any]) -> None:
    send(out, MSG_JSON, json.dumps(obj).encode())


def read_exact(inp: BinaryIO, n: int) -> Optional[bytes]:
    buf = bytearray()
    while len(buf) < n:
        chunk = inp.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class Runner:
    """Runs the graph for a batch: eagerly, or by replaying the CUDA graph captured for that batch size."""

    def __init__(self, graph: Any, cond_size: int, use_graphs: bool):
        import torch
        self.torch = torch
        self.graph = graph
        self.cond_size = cond_size
        self.use_graphs = use_graphs and graph.device.type == "cuda"
        self.captured: Dict[int, Any] = {}
        self.host_buffers: Dict[Any, Any] = {}

    def _capture(self, batch: int) -> Callable[[Any], Any]:
        torch = self.torch
        static_x = torch.zeros(batch, self.cond_size, device=self.graph.device)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                self.graph.run(static_x)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            static_y = self.graph.run(static_x)

        def replay(x: Any) -> Any:
            static_x.copy_(x)
            g.replay()
            return static_y
        return replay

    def to_host(self, y: Any) -> Any:
        """The output as a numpy array in host memory (float32 or uint8): through one page-locked buffer per
        shape on a GPU (a faster copy), kept for the next run of that batch size."""
        torch = self.torch
        if y.dtype not in (torch.uint8, torch.float32):
            y = y.float()
        if y.device.type != "cuda":
            return y.detach().contiguous().numpy()
        key = (tuple(y.shape), y.dtype)
        buf = self.host_buffers.get(key)
        if buf is None:
            buf = self.host_buffers[key] = torch.empty(y.shape, dtype=y.dtype, pin_memory=True)
        buf.copy_(y)
        return buf.numpy()

    def run(self, x: Any) -> Any:
        batch = int(x.shape[0])
        fn = self.captured.get(batch)
        if fn is None:
            eager = lambda v: self.graph.run(v.to(self.graph.device))  # noqa: E731
            if not self.use_graphs:
                why = "no CUDA device" if self.graph.device.type != "cuda" else "--no-graphs"
                sys.stderr.write(f"render_process: batch {batch} runs eagerly ({why})\n")
                fn = eager
            else:
                try:
                    fn = self._capture(batch)
                    sys.stderr.write(f"render_process: batch {batch} runs as a CUDA graph\n")
                except Exception as err:  # an operator that cannot be captured: this batch size runs eagerly
                    sys.stderr.write(f"render_process: batch {batch} runs eagerly: no CUDA graph ({str(err).splitlines()[0]})\n")
                    fn = eager
            sys.stderr.flush()
            self.captured[batch] = fn
        return fn(x)


def serve(args: argparse.Namespace, inp: BinaryIO, out: BinaryIO) -> int:
    try:
        import numpy as np
        import torch
        from .onnx_torch import load
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"PyTorch {torch.__version__} sees no CUDA device")
        graph = load(args.model, args.device, args.autocast)
        meta = graph.io_metadata()
        cond_size = int(meta["inputs"][0]["shape"][1])
        runner = Runner(graph, cond_size, not args.no_graphs)
        gpu = torch.cuda.get_device_name(graph.device) if graph.device.type == "cuda" else None
    except Exception as err:
        send_json(out, {"type": "error", "message": f"{type(err).__name__}: {err}".splitlines()[0]})
        return 2
    send_json(out, {"type": "ready", "device": str(graph.device), "torch": torch.__version__, "gpu": gpu, **meta})
    while True:
        head = read_exact(inp, 8)
        if head is None:
            return 0
        op, batch = struct.unpack("<II", head)
        if op == OP_CLOSE:
            return 0
        if op != OP_RUN or not 1 <= batch <= MAX_BATCH:
            send_json(out, {"type": "error", "message": f"malformed request (op {op}, batch {batch})"})
            return 2
        data = read_exact(inp, batch * cond_size * 4)
        if data is None:
            return 0
        try:
            t0 = time.perf_counter()
            x = torch.from_numpy(np.frombuffer(data, dtype="<f4").reshape(batch, cond_size).copy())
            y = runner.run(x)
            host = runner.to_host(y)
            ms = (time.perf_counter() - t0) * 1000.0
            code = 1 if host.dtype == np.uint8 else 0
            head_out = struct.pack("<dII", ms, code, host.ndim) + struct.pack(f"<{host.ndim}I", *host.shape)
            send(out, MSG_RESULT, head_out, memoryview(host).cast("B"))  # no copy of the frame's bytes
        except Exception as err:
            send_json(out, {"type": "run-error", "message": f"{type(err).__name__}: {err}".splitlines()[0]})


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m train.render_process",
                                description="Render an avatar's ONNX graph with PyTorch for the server (--device torch).")
    p.add_argument("--model", required=True, help="avatar.onnx")
    p.add_argument("--device", default="cuda", help="torch device (default cuda)")
    p.add_argument("--autocast", choices=["off", "fp16", "bf16"], default="off",
                   help="run a float32 graph's convolutions and matrix products in fp16/bf16 (default off)")
    p.add_argument("--no-graphs", action="store_true", help="no CUDA graphs (every run eager)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    return p


def main(argv: Optional[list] = None) -> int:
    args = parser().parse_args(argv)
    import torch
    torch.set_num_threads(max(1, args.threads))
    if args.autocast == "off":
        args.autocast = None
    return serve(args, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
