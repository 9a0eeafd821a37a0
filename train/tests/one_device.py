"""A check, op by op, that a computation keeps its tensors on one device: what a CUDA device enforces and the
meta device (our stand-in for a GPU on a machine without one) mostly does not (torch.matmul of a meta and a CPU
tensor runs). A CPU tensor of one or more dimensions beside tensors on `device` is refused with the operation's
name; zero-dimensional CPU tensors are allowed, as CUDA allows them."""
from typing import Any, Dict, Iterator

import torch
from torch.overrides import TorchFunctionMode

# conversions and reads: they take a tensor to another device or to Python on purpose
_MOVES = {"to", "cpu", "cuda", "copy_", "numpy", "tolist", "item", "__get__", "__set__", "__repr__", "__format__",
          "_has_compatible_shallow_copy_type"}


def _tensors(x: Any) -> Iterator[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _tensors(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _tensors(v)


class OneDevice(TorchFunctionMode):
    def __init__(self, device: torch.device):
        super().__init__()
        self.device = device

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Dict[str, Any] = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        if name not in _MOVES:
            ts = list(_tensors(args)) + list(_tensors(kwargs))
            if any(t.device == self.device for t in ts):
                cpu = [t for t in ts if t.device.type == "cpu" and t.dim() > 0]
                if cpu:
                    raise RuntimeError(f"{name}: a CPU tensor of shape {tuple(cpu[0].shape)} beside tensors on {self.device}")
        return func(*args, **kwargs)
