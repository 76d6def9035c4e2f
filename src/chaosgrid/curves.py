"""Mode-connecting curves between two trained runs (Garipov et al. 2018), as dnn-mode-connectivity runs them.

A curve phi(t) joins the endpoint weights w1 (t=0) and w2 (t=1) through one trainable bend theta:
- bezier: phi(t) = (1-t)^2 w1 + 2t(1-t) theta + t^2 w2;
- chain (a polygonal chain): phi(t) = (1-2t) w1 + 2t theta for t <= 1/2, (2-2t) theta + (2t-1) w2 after;
- line: the chain with theta at the midpoint, never trained (the straight segment, by the same code).
The endpoints stay fixed and theta starts at (w1+w2)/2, so every kind starts as the straight line. The bend
trains through the recipe (`recipe.fit`, as dnn-mode-connectivity's one `train` serves nets and curves), so
every option of the curve's cell applies; each step draws one t ~ U(0,1) and penalises 1/2 wd |phi(t)|^2:
weight decay acts on the point of the curve, not on theta. BatchNorm running statistics mean nothing along a curve (training updates them at random t),
so every evaluated point first recomputes them over the training set, as the exact average of per-batch
statistics (torch.optim.swa_utils.update_bn). Departure from the authors' code: that pass, and the train
metrics along the curve, use the training images unaugmented, so they are deterministic.

`connect` is a workflow curve job: two stored runs joined by every kind of curve, one table row per (kind, t).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.optim.swa_utils import update_bn

from chaosgrid import engine, recipe, train
from chaosgrid.data import Dataset
from chaosgrid.plan.blocks import CURVE_KINDS
from chaosgrid.sampling import generator

KINDS = CURVE_KINDS
BN_BATCH = 512  # images per batch of the BatchNorm pass; the average is exact whatever the size


def coefficients(kind: str, t: float) -> tuple[float, float, float]:
    """Weights of (w1, theta, w2) at t; they sum to 1."""
    if kind == "bezier":
        return (1 - t) ** 2, 2 * t * (1 - t), t**2
    if kind in ("chain", "line"):
        return (1 - 2 * t, 2 * t, 0.0) if t <= 0.5 else (0.0, 2 - 2 * t, 2 * t - 1)
    raise ValueError(f"unknown curve {kind!r}; choose from {', '.join(KINDS)}")


def moved(model: nn.Module) -> list[str]:
    """The tensors a curve moves: the model's trainable ones (weights, biases, BatchNorm's affine); its
    buffers are recomputed at every point."""
    return [name for name, _ in model.named_parameters()]


def midpoint(w1: dict, w2: dict, names: list[str]) -> dict[str, torch.Tensor]:
    """The bend every curve starts from: the middle of the straight segment."""
    return {n: (w1[n] + w2[n]) / 2 for n in names}


def point(kind: str, t: float, w1: dict, bend: dict, w2: dict) -> dict[str, torch.Tensor]:
    """phi(t): the curve's parameters at t (those of `bend`; the endpoints' other entries are not touched)."""
    a, b, c = coefficients(kind, t)
    return {n: a * w1[n] + b * theta + c * w2[n] for n, theta in bend.items()}


class Curve(nn.Module):
    """A `kind` curve between fixed endpoints as a module whose only parameters are the bend: calling it
    runs `model` at phi(t) for the current t (`draw`, once per training step, so micro-batches, SAM's second
    gradient and the penalty's shifted one all see the same point). Plain module, so the recipe's `LoopStack`
    trains it like any run (a stack of K = 1)."""

    def __init__(self, model: nn.Module, kind: str, w1: dict, w2: dict, t_seed: int):
        super().__init__()
        names = moved(model)
        self.kind, self.t = kind, 0.5
        self.ends = ({n: w1[n].detach() for n in names}, {n: w2[n].detach() for n in names})
        self.bend = nn.ParameterDict(
            {n.replace(".", "/"): nn.Parameter(t) for n, t in midpoint(w1, w2, names).items()}
        )
        self._model = [model]  # held, not registered: the model's own parameters are not the curve's
        self._draws = generator("curve_t", t_seed)

    def draw(self, step: int) -> None:
        self.t = float(torch.rand((), generator=self._draws))

    def theta(self) -> dict[str, torch.Tensor]:
        return {n.replace("/", "."): p for n, p in self.bend.items()}

    def phi(self) -> dict[str, torch.Tensor]:
        return point(self.kind, self.t, self.ends[0], self.theta(), self.ends[1])

    def l2(self, weight_decay: float) -> torch.Tensor:
        """(1,) weight_decay/2 |phi(t)|^2: the curve's weight decay, on the point, not on the bend."""
        return (weight_decay / 2 * sum((p**2).sum() for p in self.phi().values())).reshape(1)

    def train(self, mode: bool = True) -> Curve:
        self._model[0].train(mode)
        return super().train(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self._model[0]
        return functional_call(model, {**dict(model.named_buffers()), **self.phi()}, (x,))


def train_bend(
    model: nn.Module, kind: str, w1: dict, w2: dict, x: torch.Tensor, y: torch.Tensor, cell: dict
) -> dict[str, torch.Tensor]:
    """Train the bend of a `kind` curve between state dicts w1 and w2 on (x, y) through the recipe
    (`recipe.fit`: every option of the cell, its order and aug seeds), with the cell's weight decay on
    phi(t) as the authors apply it (in the loss; the optimizer's own weight decay is off); t is drawn from
    the cell's order seed. Returns the bend (the midpoint, untouched, for `line`)."""
    curve = Curve(model, kind, w1, w2, cell["order_seed"]).to(x.device, x.dtype)
    if kind != "line":
        stack = engine.LoopStack([curve], [train.model_seed(cell)])
        recipe.fit(
            stack,
            [{**cell, "weight_decay": 0.0}],
            x,
            y,
            before_step=curve.draw,
            regularizer=lambda: curve.l2(cell["weight_decay"]),
        )
    return {n: t.detach() for n, t in curve.theta().items()}


def at(model: nn.Module, params: dict[str, torch.Tensor], x_train: torch.Tensor) -> nn.Module:
    """`model` holding `params`, its BatchNorm statistics recomputed over x_train, in eval mode."""
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            tensor.copy_(params[name])
    update_bn(x_train.split(BN_BATCH), model)
    return model.eval()


@torch.no_grad()
def probabilities(model: nn.Module, x: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    return torch.cat([model(xc).softmax(-1) for xc in x.split(chunk)])


def along(
    model: nn.Module,
    kind: str,
    w1: dict,
    bend: dict,
    w2: dict,
    x_train,
    y_train,
    x_test,
    y_test,
    ts: list[float],
    weight_decay: float,
    first: torch.Tensor,
) -> list[dict]:
    """Each point t of the curve, BatchNorm recomputed: train NLL, train loss with the L2 term (as the
    authors report it), train and test error, and the test error of the two-member ensemble {w1, phi(t)}
    (mean of softmax; `first`: w1's test probabilities, evaluated the same way, BatchNorm recomputed)."""
    rows = []
    for t in ts:
        phi = point(kind, t, w1, bend, w2)
        net = at(model, phi, x_train)
        train_p, test_p = probabilities(net, x_train), probabilities(net, x_test)
        nll = F.nll_loss(train_p.clamp_min(1e-12).log(), y_train).item()
        l2 = weight_decay / 2 * sum((p**2).sum() for p in phi.values()).item()
        rows.append(
            {
                "curve": kind,
                "t": t,
                "train_nll": nll,
                "train_loss": nll + l2,
                "train_err": (train_p.argmax(1) != y_train).double().mean().item(),
                "test_err": (test_p.argmax(1) != y_test).double().mean().item(),
                "ensemble_err": (((first + test_p) / 2).argmax(1) != y_test).double().mean().item(),
            }
        )
    return rows


def connect(job, data: Dataset, w1: dict, w2: dict, log: Callable[[str], None] = print) -> list[dict]:
    """A curve job (chaosgrid.plan.specs.CurveJob): each of its kinds trained between the state dicts w1 and w2 on
    the job cell's training set (on `data`'s device), then evaluated at `points` evenly spaced t; rows
    tagged with the pair."""
    x, y = train.training_set(data, job.cell)
    x_test, y_test = data.normalize(data.x_test), data.y_test
    w1, w2 = ({k: v.to(x.device) for k, v in w.items()} for w in (w1, w2))
    model = train.init_model(job.cell, x, data.num_classes).to(x.device)
    model.load_state_dict(w1)  # buffers that are not BatchNorm's (FastNet's whitening) come from w1
    ts = torch.linspace(0, 1, job.points).tolist()
    first = probabilities(at(model, {n: w1[n] for n in moved(model)}, x), x_test)
    rows = []
    for kind in job.kinds:
        begin = time.perf_counter()
        bend = train_bend(model, kind, w1, w2, x, y, job.cell)
        trained = time.perf_counter() - begin
        rows += [
            {"pair": job.key, "seed_a": job.seeds[0], "seed_b": job.seeds[1], **row}
            for row in along(
                model, kind, w1, bend, w2, x, y, x_test, y_test, ts, job.cell["weight_decay"], first
            )
        ]
        worst = max(r["train_nll"] for r in rows if r["curve"] == kind)
        log(
            f"{kind}: bend trained in {trained:.1f} s, {job.points} points in {time.perf_counter() - begin - trained:.1f} s;"
            f" max train NLL {worst:.3f}"
        )
    return rows
