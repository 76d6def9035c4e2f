"""How K models take a step together, and the per-run operations every recipe builds on.

Two engines hold a shard's K models:
- `LoopStack`: K independent modules, run one after another (fastest on a CPU for CIFAR-sized images);
- `VmapStack`: the K models' parameters and BatchNorm buffers stacked along a leading run dimension and
  called through `torch.func.functional_call` under `vmap`, so a GPU runs K tiny networks as one wide one.

Both expose the same flat list `params` and the same per-run operations over any list of tensors shaped like
it (gradients, perturbations): `run_sums` reduces each run's entries to one number, `per_run` broadcasts one
number per run onto a tensor. Norms, clipping, SAM's ascent and the gradient-norm penalty are written once on
these, vectorised over K, and never mix runs (unlike `clip_grad_norm_` over the stack's parameters).

What a run computes is its cell; *how* it runs — engine, channels-last memory format, `torch.compile` — is an
`Execution`, which changes speed and float rounding only and is recorded in every runs row.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from chaosgrid.footprint import choose_engine


class LoopStack:
    """K independent modules; a step runs them one after another.

    Every random draw inside a module (dropout, stochastic depth, `torch.rand` in `forward`) comes from its
    run's own seed: before each run's forward pass, torch's global generator is seeded from (run seed, step,
    call within the step), so a run draws the same numbers alone, beside any others, and after a resume.
    """

    def __init__(self, modules: list[nn.Module], seeds: list[int] | None = None):
        self.modules = modules
        self.k = len(modules)
        self.seeds = list(seeds) if seeds is not None else [0] * self.k
        self._key, self._call = 0, 0
        self.params = [p for m in modules for p in m.parameters()]
        owner = [r for r, m in enumerate(modules) for _ in m.parameters()]
        self._owner = torch.tensor(owner, device=self.params[0].device)
        self.run_shapes = [p.shape for p in self.params]
        self.run_offsets = _offsets(self.run_shapes, owner)

    def train(self, mode: bool) -> None:
        for m in self.modules:
            m.train(mode)

    def draws_from(self, key: int) -> None:
        """Random draws of the following forward passes are keyed by `key` (a step; -1 for evaluation)."""
        self._key, self._call = key, 0

    def __call__(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        out = []
        for k, m in enumerate(self.modules):
            torch.manual_seed(_mix(self.seeds[k], self._key, self._call))
            out.append(m(x if shared else x[k]))
        self._call += 1
        return torch.stack(out)

    def run_sums(self, values: list[torch.Tensor]) -> torch.Tensor:
        """(K,) sums of each run's entries of tensors shaped like `params`."""
        sums = torch.stack([v.sum() for v in values])
        return torch.zeros(self.k, dtype=sums.dtype, device=sums.device).index_add_(0, self._owner, sums)

    def per_run(self, values: torch.Tensor, i: int) -> torch.Tensor:
        """One value per run (K,), broadcastable onto `params[i]`."""
        return values[self._owner[i]]

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """Each run's weights as a CPU state dict, loadable into its module (`build_stack(start=...)`)."""
        return [{n: t.detach().cpu().clone() for n, t in m.state_dict().items()} for m in self.modules]


class VmapStack:
    """K modules of one architecture as stacked tensors, called through `functional_call` under `vmap`.

    vmap's `randomness="error"` (its default) stays: under "different" a run's draws would depend on how
    many runs share the stack and where it sits, so a model that draws random numbers trains on the loop."""

    def __init__(self, modules: list[nn.Module]):
        self.stacked, self.buffers = stack_module_state(modules)
        self.base = copy.deepcopy(modules[0]).to("meta")
        self.k = len(modules)
        self.params = list(self.stacked.values())
        self.run_shapes = [p.shape[1:] for p in self.params]
        self.run_offsets = _offsets(self.run_shapes, [0] * len(self.params))

    def train(self, mode: bool) -> None:
        self.base.train(mode)

    def draws_from(self, key: int) -> None:
        """Nothing to key: a random draw under vmap raises (see the class)."""

    def _one(self, params, buffers, x):
        return functional_call(self.base, (params, buffers), (x,))

    def __call__(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        if shared and x.device.type == "cpu":
            # One input for every model (evaluation): on a CPU, K plain calls beat the batched kernels vmap
            # makes of them (64 cnns on 4,680 digits: 4.8-4.9 s against 7.1-7.9 s), equal up to rounding
            # (logits within 3e-8; bit-identical at widths 8 and 16).
            run_of = lambda tensors, r: {n: t[r] for n, t in tensors.items()}
            return torch.stack(
                [self._one(run_of(self.stacked, r), run_of(self.buffers, r), x) for r in range(self.k)]
            )
        return vmap(self._one, in_dims=(0, 0, None if shared else 0))(self.stacked, self.buffers, x)

    def run_sums(self, values: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([v.reshape(self.k, -1).sum(1) for v in values]).sum(0)

    def per_run(self, values: torch.Tensor, i: int) -> torch.Tensor:
        return values.view(self.k, *[1] * len(self.run_shapes[i]))

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        tensors = {**self.stacked, **self.buffers}
        return [{n: t[r].detach().cpu().clone() for n, t in tensors.items()} for r in range(self.k)]


Stack = LoopStack | VmapStack


def _mix(seed: int, key: int, call: int) -> int:
    """A 63-bit seed from (run seed, step, call): splitmix64's finaliser over the three, in plain integer
    arithmetic (no hash-library call inside a compiled forward, where dynamo warned about one)."""
    x = (seed + 0x9E3779B97F4A7C15 * (1 + (key + 1) * 0x100000 + call)) & 0xFFFFFFFFFFFFFFFF
    for shift, factor in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        x = ((x ^ (x >> shift)) * factor) & 0xFFFFFFFFFFFFFFFF
    return (x ^ (x >> 31)) >> 1


def _offsets(shapes: list[torch.Size], owners: list[int]) -> list[int]:
    """Where each tensor starts in its run's flat parameter vector (the same for a run alone or stacked)."""
    used: dict[int, int] = {}
    offsets = []
    for shape, owner in zip(shapes, owners, strict=True):
        offsets.append(used.get(owner, 0))
        used[owner] = offsets[-1] + math.prod(shape)
    return offsets


def norms(stack: Stack, values: list[torch.Tensor]) -> torch.Tensor:
    """(K,) global L2 norm of each run's part of `values` (a gradient, a perturbation)."""
    return stack.run_sums([v.double().square() for v in values]).sqrt().to(values[0].dtype)


def scale_(stack: Stack, values: list[torch.Tensor], factors: torch.Tensor) -> None:
    """Multiply each run's part of `values` in place by its own factor (K,)."""
    for i, v in enumerate(values):
        v.mul_(stack.per_run(factors, i))


def add_(stack: Stack, values: list[torch.Tensor], others: list[torch.Tensor], factors: torch.Tensor) -> None:
    """values += factor_r * others, run by run, in place."""
    for i, (v, o) in enumerate(zip(values, others, strict=True)):
        v.add_(o * stack.per_run(factors, i))


def counter_normal(stack: Stack, seeds: torch.Tensor, step: int) -> list[torch.Tensor]:
    """Standard normal noise shaped like `params`, a pure function of (run seed, step, coordinate).

    Counter-based (a 32-bit integer hash and Box-Muller), so one vectorised call draws all K runs' noise and
    a run's noise is the same whether it trains alone, with others, or under either engine. `seeds` (K,)
    are int64 below 2**32.
    """
    run_keys = _hash32(seeds ^ _hash32(torch.tensor(step, device=seeds.device)))
    out = []
    for i, (shape, offset) in enumerate(zip(stack.run_shapes, stack.run_offsets, strict=True)):
        counter = torch.arange(offset, offset + math.prod(shape), device=seeds.device).view(shape)
        key = stack.per_run(run_keys, i) + 2 * counter
        u1, u2 = (((_hash32(key + j) + 0.5) / 2**32).float() for j in (0, 1))
        out.append(torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2))
    return out


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixing function (Mueller's) on int64 tensors: every product stays below 2**63."""
    x = x & 0xFFFFFFFF
    for _ in range(2):
        x = (((x >> 16) ^ x) * 0x45D9F3B) & 0xFFFFFFFF
    return (x >> 16) ^ x


@dataclass(frozen=True)
class Execution:
    """How a shard runs, as opposed to what it computes: changes speed and float rounding, never the recipe."""

    engine: str = "auto"  # auto | loop | vmap (see chaosgrid.footprint.choose_engine)
    channels_last: bool = False  # NHWC weights and batches: the layout GPU tensor cores and oneDNN prefer
    compile: bool = False  # torch.compile the training forward; one-off ~15-50 s per batch shape on a CPU
    # the most runs vmap trains at once (planning's, where a shard's runs do not fit together); 0: all
    stack: int = 0

    def resolved(self, device: torch.device, pixels: int, k: int) -> Execution:
        return replace(self, engine=choose_engine(self.engine, device.type == "cuda", pixels, k))

    def __str__(self) -> str:
        return ", ".join([self.engine] + ["channels-last"] * self.channels_last + ["compiled"] * self.compile)

    def provenance(self) -> dict:
        """The runs-table columns that record how the shard ran."""
        return {"engine": self.engine, "channels_last": self.channels_last, "compiled": self.compile}


DEFAULT_EXECUTION = Execution()


def memory_format(execution: Execution) -> torch.memory_format:
    return torch.channels_last if execution.channels_last else torch.contiguous_format


def stack_groups(cells: list, execution: Execution) -> list[list]:
    """The cells trained together: under vmap all at once, or `stack` at a time where they do not fit the
    device together; in the loop one at a time."""
    if execution.engine != "vmap":
        return [[c] for c in cells]
    size = execution.stack or len(cells)
    return [cells[i : i + size] for i in range(0, len(cells), size)]


def make_stack(modules: list[nn.Module], execution: Execution, seeds: list[int] | None = None) -> Stack:
    return VmapStack(modules) if execution.engine == "vmap" else LoopStack(modules, seeds)
