"""The batches of K runs, step by step: each run's own order of examples (its order seed; `batch_order`),
its augmentation drawn from its own aug seed, and the split into micro-batches (gradient accumulation)."""

from __future__ import annotations

import torch

from chaosgrid import engine
from chaosgrid.sampling import apply_augmentation, batch_indices, draw_augmentation, generator


class Batches:
    """Each step's micro-batches for K runs: every run's batch from its own order (order seed,
    `batch_order`), augmented from its own stream (aug seed), split into chunks of `micro_batch`."""

    def __init__(
        self,
        cells: list[dict],
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        execution: engine.Execution,
    ):
        cell = cells[0]
        self.x, self.y, self.k, self.cell, self.execution = x, y, len(cells), cell, execution
        self.orders = [
            batch_indices(
                len(y),
                batch_size,
                generator("order", c["order_seed"]),
                cell["batch_order"],
                cell["drop_last"],
            )
            for c in cells
        ]
        self.augmenters = [generator("aug", c["aug_seed"]) for c in cells]
        # copies: augmented once
        self.augmentation = "none" if cell["augment_copies"] else cell["augmentation"]

    def draw(self) -> tuple[torch.Tensor, list]:
        """The next step's (K, B) example indices and each run's augmentation draw: every random choice of a
        step, so that `skip` can replay them without building the batches."""
        idx = torch.stack([next(order) for order in self.orders])
        return idx, [
            draw_augmentation(idx.shape[1], tuple(self.x.shape[-2:]), self.augmentation, g)
            for g in self.augmenters
        ]

    def skip(self, steps: int) -> None:
        """Advance past `steps` steps (a resumed fit): the same draws, so the next batches are bit-identical."""
        for _ in range(steps):
            self.draw()

    def next(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The next step's micro-batches, each (K, m, ...) inputs and (K, m) labels."""
        x, cell = self.x, self.cell
        idx, draws = self.draw()  # (K, B)
        batch = idx.shape[1]
        shifts, flips = (torch.stack(d) if d[0] is not None else None for d in zip(*draws))
        micro = min(cell["micro_batch"] or batch, batch)
        out = []
        for start in range(
            0, batch - micro + 1 if cell["drop_last"] else batch, micro
        ):  # drop_last: whole chunks
            part = slice(start, min(start + micro, batch))
            ids = idx[:, part].reshape(-1).to(x.device)
            xb = apply_augmentation(
                x[ids],
                None if shifts is None else shifts[:, part].reshape(-1, 2),
                None if flips is None else flips[:, part].reshape(-1),
            )
            if self.execution.channels_last:
                xb = xb.contiguous(memory_format=engine.memory_format(self.execution))
            out.append((xb.view(self.k, -1, *x.shape[1:]), self.y[ids].view(self.k, -1)))
        return out
