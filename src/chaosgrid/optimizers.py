"""Optimizers whose numbers belong to each run: SGD (momentum, Nesterov), Adam and AdamW as torch.optim defines
them, with the learning rate, momentum and weight decay (`cells.PER_RUN`) held as one number per run.

Why not torch.optim: it keeps an optimizer's numbers per parameter group, and under vmap one stacked tensor
holds all K runs, so grid points that differ only in lr, momentum or weight decay could not share a stack;
and its first step imports torch._dynamo (1-1.7 s of every job on a CPU, for nothing a job uses). The updates
are torch.optim's single-tensor formulas (`tests/test_recipe.py` checks them against it), each written as
separate elementwise operations and never a fused multiply-add, so a run's numbers come out the same whichever
runs share its stack (`chaosgrid.engine`'s `per_run` broadcasts them); in place where torch.optim is, so a
step holds no more copies of a parameter than torch.optim's.
"""

from __future__ import annotations

import torch

from chaosgrid import engine

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which chaosgrid has always used


class Optimizer:
    """One optimizer for a stack's K runs: `step(lr)` with each run's current learning rate (K,), float64."""

    def __init__(self, stack: engine.Stack, cells: list[dict]):
        self.stack, self.kind = stack, cells[0]["optimizer"]
        self.params = stack.params
        self.dtype, self.device = self.params[0].dtype, self.params[0].device
        self.decay_rates = torch.tensor([c["weight_decay"] for c in cells], dtype=torch.float64)
        self.momentum = self._per_param([c["momentum"] for c in cells])
        self.weight_decay = self._per_param(self.decay_rates)
        self.decays = any(c["weight_decay"] != 0 for c in cells)
        self.uses_momentum = any(c["momentum"] != 0 for c in cells)
        self.nesterov = cells[0]["nesterov"] and self.uses_momentum
        self.steps = 0
        self.state: dict[str, list[torch.Tensor | None]] = {}

    def _per_param(self, values) -> list[torch.Tensor]:
        """One number per run, in the parameters' dtype, broadcastable onto each parameter tensor."""
        per_run = torch.as_tensor(values, dtype=torch.float64).to(self.device, self.dtype)
        return [self.stack.per_run(per_run, i) for i in range(len(self.params))]

    @torch.no_grad()
    def step(self, lr: torch.Tensor) -> None:
        """Update every parameter from its `.grad` with each run's learning rate (K,)."""
        self.steps += 1
        if self.kind in ("sgd", "sam"):
            self._sgd(self._per_param(lr))
        else:
            self._adam(lr)

    def _sgd(self, lr: list[torch.Tensor]) -> None:
        buffers = self.state.setdefault("momentum_buffer", [None] * len(self.params))
        for i, p in enumerate(self.params):
            step, own = p.grad, False  # `own`: a temporary of this step's, which may be overwritten
            if self.decays:
                step, own = (self.weight_decay[i] * p).add_(step), True  # g + wd·p
            if self.uses_momentum:
                if buffers[i] is None:
                    buffers[i] = step.clone()
                else:
                    buffers[i].mul_(self.momentum[i]).add_(step)
                if self.nesterov:
                    step, own = (self.momentum[i] * buffers[i]).add_(step), True
                else:
                    step, own = buffers[i], False
            p.sub_(step.mul_(lr[i]) if own else step * lr[i])

    def _adam(self, lr: torch.Tensor) -> None:
        beta1, beta2 = ADAM_BETAS
        first = self.state.setdefault("exp_avg", [torch.zeros_like(p) for p in self.params])
        second = self.state.setdefault("exp_avg_sq", [torch.zeros_like(p) for p in self.params])
        correction1, root_correction2 = 1 - beta1**self.steps, (1 - beta2**self.steps) ** 0.5
        step_size = self._per_param(lr / correction1)
        if self.kind == "adamw":
            shrink = self._per_param(1 - lr * self.decay_rates.to(lr.device))  # decoupled weight decay
        for i, p in enumerate(self.params):
            g = p.grad
            if self.kind == "adamw":
                p.mul_(shrink[i])
            elif self.decays:
                g = (self.weight_decay[i] * p).add_(g)
            first[i].mul_(beta1).add_((1 - beta1) * g)
            second[i].mul_(beta2).add_((g * g).mul_(1 - beta2))
            denominator = second[i].sqrt().div_(root_correction2).add_(ADAM_EPS)
            p.sub_(torch.div(first[i], denominator, out=denominator).mul_(step_size[i]))

    def state_dict(self) -> dict:
        """The step count and every state tensor: what a resumed fit continues from (tensors and plain values,
        read back with weights_only=True)."""
        return {"steps": self.steps, "state": self.state}

    def load_state_dict(self, saved: dict) -> None:
        self.steps, self.state = saved["steps"], saved["state"]
