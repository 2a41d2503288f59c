"""Linear layers on MKL-prepacked weights, for the generators' forward passes on CPU.

A float32 `nn.Linear` on CPU calls MKL's sgemm, which copies the weight into its blocked layout on
every call. A decode step's products are small (a few hundred rows, or a batch of 8, against a weight
of the same order), so that copy is a real part of their time: packing every weight once per generate
call and computing on the packed copies makes both generators faster with the same answers (measured
in docs/benchmarks.md). The packed layout is the one
`torch.compile`'s freezing pass uses, through the same `torch.ops.mkl` operators.

Those operators are private to PyTorch, and `_mkl_linear` computes on the packed copy only for the
batch size it was told at packing; we pass each call's own row count, relying on MKL's packed weight
not depending on it (its size does not, and the products match `F.linear` at every row count tried,
within float rounding). `packing_works()` checks exactly that once per process; where the operators
are missing (a build without MKL), the check fails, or a weight is not float32 on CPU, layers keep
their plain `F.linear`.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Iterator

import torch
import torch.nn.functional as F

# Memory the packed copies may take, counted as the weights' own size: the model keeps its weights,
# and a packed copy fills about as much (MKL reserves ~4x that, but the rest is never touched).
PACKED_WEIGHT_BYTES = 2 * 2**30

# The batch size the weights are packed for; calls pass their own (see the module docstring).
_PACKED_FOR_ROWS = 256


def pack_weight(weight: torch.Tensor) -> torch.Tensor:
    """An MKL-packed copy of a float32 CPU weight of shape (out features, in features)."""
    return torch.ops.mkl._mkl_reorder_linear_weight(weight.detach(), _PACKED_FOR_ROWS)


def packed_linear(x: torch.Tensor, packed: torch.Tensor, weight: torch.Tensor,
                  bias: torch.Tensor | None) -> torch.Tensor:
    """`F.linear(x, weight, bias)` computed on the packed copy of `weight`."""
    rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
    return torch.ops.mkl._mkl_linear(x, packed, weight, bias, rows)


@functools.cache
def packing_works() -> bool:
    """True when the MKL operators exist and agree with `F.linear` at row counts other than the
    packed one (checked once, on a small random weight with a bias)."""
    try:
        generator = torch.Generator().manual_seed(0)
        weight = torch.randn(48, 40, generator=generator)
        bias = torch.randn(48, generator=generator)
        packed = pack_weight(weight)
        for rows in (1, 7, 64, _PACKED_FOR_ROWS + 3):
            x = torch.randn(rows, 40, generator=generator)
            if not torch.allclose(packed_linear(x, packed, weight, bias), F.linear(x, weight, bias),
                                  rtol=1e-5, atol=1e-5):
                return False
        return True
    except (AttributeError, RuntimeError):  # operator missing, or MKL not built in
        return False


def _packable(module: torch.nn.Module) -> bool:
    """A plain float32 CPU `nn.Linear`: subclasses (quantised layers, custom forwards) are left alone."""
    weight = getattr(module, "weight", None)
    return (type(module) is torch.nn.Linear and weight is not None and weight.dtype == torch.float32
            and weight.device.type == "cpu")


class PackedLinears:
    """Packed copies of a model's float32 CPU linear weights, made now (so they match the weights of
    this moment) and used by its layers only inside `installed()`.

    Layers are packed in module order until `budget_bytes` is spent; the rest stay plain. Two calls
    installing on one model at once stay correct: a layer whose packed forward the other call has
    just removed computes plain.
    """

    def __init__(self, model: torch.nn.Module, budget_bytes: int = PACKED_WEIGHT_BYTES):
        self.packed: list[tuple[torch.nn.Linear, torch.Tensor]] = []
        if budget_bytes <= 0 or not packing_works():
            return
        spent = 0
        with torch.no_grad():
            for module in model.modules():
                if not _packable(module):
                    continue
                spent += module.weight.numel() * module.weight.element_size()
                if spent > budget_bytes:
                    break
                self.packed.append((module, pack_weight(module.weight)))

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """The packed layers compute on their packed copies until the block ends."""
        for module, packed in self.packed:
            module.forward = functools.partial(_forward, module, packed)
        try:
            yield
        finally:
            for module, _ in self.packed:
                module.__dict__.pop("forward", None)


def _forward(module: torch.nn.Linear, packed: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return packed_linear(x, packed, module.weight, module.bias)
