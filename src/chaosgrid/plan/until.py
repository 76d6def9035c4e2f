"""A study's `until` block (seeds until the answer is known), checked at planning: which comparisons, on which
question, the smallest difference worth detecting, seeds per block and at most. Torch- and pandas-free;
the statistics of each look are `chaosgrid.analysis.sequential`'s (its docstring explains the design).
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosgrid.cells import GridError, format_value

QUESTIONS = ("test_set", "distribution")
UNTIL_KEYS = {"compare", "on", "delta", "block", "max_seeds", "level"}


@dataclass(frozen=True)
class Until:
    """A study's `until` block, checked: which comparisons, on which question, the smallest difference worth
    detecting (accuracy points), seeds per block and at most, and the confidence level."""

    axis: str  # compare neighbouring values along this axis ...
    # ... or the points these values name (fewer axes: pooled over the rest)
    a: tuple[tuple[str, object], ...]
    b: tuple[tuple[str, object], ...]
    on: str
    delta: float
    block: int
    max_seeds: int
    level: float = 0.95

    @property
    def looks(self) -> int:
        return self.max_seeds // self.block

    @classmethod
    def of(cls, block: dict) -> Until:
        """The Until a checked `until` block declares (`parse_until` checks it against its study)."""
        block = _keys(block)
        compare = block["compare"]
        return cls(
            compare.get("axis", ""),
            tuple(compare.get("a", {}).items()),
            tuple(compare.get("b", {}).items()),
            block.get("on", "test_set"),
            float(block["delta"]),
            block["block"],
            block["max_seeds"],
            float(block.get("level", 0.95)),
        )


def _keys(block: object) -> object:
    """The block with its keys as written: YAML 1.1 (PyYAML) reads the key `on` as True (JSON, "true")."""
    return (
        {("on" if key in (True, "true") else key): value for key, value in block.items()}
        if isinstance(block, dict)
        else block
    )


def parse_until(name: str, study: dict, axes: list[str]) -> Until:
    """The study's `until` block, or GridError naming the bad key: an axis the study does not vary, a value it
    does not have, `block` larger than `max_seeds` or not dividing it, `delta` <= 0, or `seeds`/`shard_size`
    set beside it (the block sets both)."""
    block = _keys(study["until"])
    where = f"study {name!r}: until"
    if not isinstance(block, dict) or (unknown := sorted(set(block) - UNTIL_KEYS)):
        raise GridError(
            f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(UNTIL_KEYS))}"
            if isinstance(block, dict)
            else f"{where} maps {', '.join(sorted(UNTIL_KEYS))}"
        )
    if beside := [k for k in ("seeds", "shard_size") if k in study]:
        raise GridError(
            f"{where}: the block sets the seeds (block at a time up to max_seeds); remove {beside[0]!r}"
        )
    number = lambda key, default=None: block.get(key, default)
    for key, ok in (
        ("delta", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 100),
        ("block", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 2),
        ("max_seeds", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 2),
        ("level", lambda v: isinstance(v, float) and 0.5 <= v < 1),
    ):
        if (key in block or key != "level") and not ok(number(key)):
            raise GridError(
                f"{where}: {key} is {number(key)!r}; delta is a difference in accuracy points > 0, "
                f"block and max_seeds whole numbers of seeds >= 2, level in [0.5, 1)"
            )
    if block["block"] > block["max_seeds"] or block["max_seeds"] % block["block"]:
        raise GridError(
            f"{where}: block {block['block']} must divide max_seeds {block['max_seeds']} (one block per look)"
        )
    on = block.get("on", "test_set")
    if on not in QUESTIONS:
        raise GridError(f"{where}: on is {on!r}; choose test_set or distribution")
    compare = block.get("compare")
    if not isinstance(compare, dict) or not (set(compare) == {"axis"} or set(compare) == {"a", "b"}):
        raise GridError(
            f"{where}: compare names an axis ({{axis: NAME}}) or two points ({{a: {{...}}, b: {{...}}}})"
        )
    if "axis" in compare and compare["axis"] not in axes:
        raise GridError(
            f"{where}: compare axis {compare['axis']!r} is not an axis of the study; its axes: "
            f"{', '.join(axes) or 'none'}"
        )
    points = {side: compare.get(side, {}) for side in ("a", "b")}
    for side, values in points.items():
        for axis, value in values.items():
            if axis not in axes:
                raise GridError(
                    f"{where}: compare {side} names {axis!r}, not an axis of the study; its axes: "
                    f"{', '.join(axes)}"
                )
            if not any(format_value(value) == format_value(v) for v in study[axis]):
                raise GridError(f"{where}: compare {side}: {axis} has no value {format_value(value)}")
    if set(points["a"]) != set(points["b"]):
        raise GridError(f"{where}: compare a and b must name the same axes")
    return Until.of(block)
