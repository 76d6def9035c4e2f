"""Seed indices and how a grid point's seeds are split into shards: blocks of `shard_size`, spelled in
shard keys ("seeds~0-7"), keeping the blocks a study already finished when it grows."""

from __future__ import annotations

from collections.abc import Iterable


def seed_list(seeds: int | list[int]) -> list[int]:
    """`seeds` as declared: a count n means indices 0..n-1, a list means exactly those indices."""
    return list(range(seeds)) if isinstance(seeds, int) else sorted(set(seeds))


# The smallest shard chaosgrid plans where a study does not set `shard_size` (plan.sizing sizes them by compute
# in multiples of it): 8 runs share a process's fixed cost (about 2 s of imports and writing here) and let
# vmap stack them (1.29x at K=8 on digits, docs/benchmarks.md).
SHARD_SIZE = 8


def seed_text(block: tuple[int, ...]) -> str:
    """A block of seed indices as it appears in a shard key: "first-last" when consecutive ("0-7", "3-3"), else
    its runs of consecutive indices ("0-2,5")."""
    runs = [[block[0], block[0]]]
    for seed in block[1:]:
        if seed == runs[-1][1] + 1:
            runs[-1][1] = seed
        else:
            runs.append([seed, seed])
    if len(runs) == 1:
        return f"{block[0]}-{block[-1]}"
    return ",".join(f"{first}-{last}" if last > first else str(first) for first, last in runs)


def parse_seed_text(text: str) -> tuple[int, ...] | None:
    """The seed indices a key's "seeds~" part names (seed_text's inverse), or None for anything else."""
    seeds = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        last = last or first
        if not (first.isdigit() and last.isdigit()) or int(last) < int(first):
            return None
        seeds += range(int(first), int(last) + 1)
    return tuple(seeds)


def seed_blocks(
    seeds: list[int], size: int, finished: Iterable[tuple[int, ...]] = ()
) -> list[tuple[int, ...]]:
    """The seed indices grouped into shards. The `finished` shards (their seed tuples) whose seeds are all
    still wanted are kept as they are, larger first, never overlapping, whatever size made them: a study
    that grew from 12 to 16 seeds keeps seeds~8-11, and one whose shard size changed re-trains nothing it
    has. The other seeds fall in blocks: block b holds the wanted seeds in [b·size, (b+1)·size), so raising
    `seeds` adds blocks and never renames one, and growth completes a partial block (seeds~12-15)."""
    left, shards = set(seeds), []
    for done in sorted(finished, key=lambda d: (-len(d), d)):
        if set(done) <= left:
            shards.append(done)
            left -= set(done)
    blocks: dict[int, list[int]] = {}
    for seed in sorted(left):
        blocks.setdefault(seed // size, []).append(seed)
    return sorted(shards + [tuple(block) for block in blocks.values()])
