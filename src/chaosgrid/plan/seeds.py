"""Seed indices and how a grid point's seeds are split into shards: blocks of `shard_size`, spelled in
shard keys ("seeds~0-7"), keeping the blocks a study already finished when it grows."""

from __future__ import annotations

from collections.abc import Iterable


def seed_list(seeds: int | list[int]) -> list[int]:
    """`seeds` as declared: a count n means indices 0..n-1, a list means exactly those indices."""
    return list(range(seeds)) if isinstance(seeds, int) else sorted(set(seeds))


# Runs per shard unless a study sets `shard_size`: a study grows 8 seeds at a time without renaming a finished
# shard, and 8 runs share a process's fixed cost (about 2 s of imports and writing here, ~10% of a default-grid
# job) and let vmap stack them (1.29x at K=8 on digits, docs/benchmarks.md). Paper configs set their own.
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
    """The seed indices grouped into shards: block b holds the wanted seeds in [b·size, (b+1)·size), so that
    raising `seeds` adds blocks and never renames one. A block may already be covered in part by `finished`
    shards (their seed tuples; a study that grew from 12 to 16 seeds finished seeds~8-11 of block 1): those
    whose seeds are all still wanted are kept (larger first, never overlapping), and the block's other seeds
    make one more shard (seeds~12-15), so growth completes a partial block instead of re-training it."""
    blocks: dict[int, list[int]] = {}
    for seed in seeds:
        blocks.setdefault(seed // size, []).append(seed)
    shards = []
    for block in blocks.values():
        left = set(block)
        for done in sorted(finished, key=lambda d: (-len(d), d)):
            if set(done) <= left:
                shards.append(done)
                left -= set(done)
        if left:
            shards.append(tuple(sorted(left)))
    return sorted(shards)
