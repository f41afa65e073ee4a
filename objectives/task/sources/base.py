"""What every source kind shares: the chunk size and the checks of its YAML parameters.

A source is a frozen dataclass of its YAML parameters (`task.sources: [{kind: ...}]`) with
`validate(task)`, `clips(task, band, split, n, generator, cache_dir)` yielding chunks of
`Clips`, and `fingerprint()` (what the parameters do not say about its data, for the cache key).
"""

from __future__ import annotations

from objectives.errors import InvalidConfig

CHUNK = 500  # clips made at once: bounds memory at about 60 MB per chunk
WALL_M = 0.3  # closest a room's source may come to a wall


def check_share(share: float) -> None:
    if not share > 0:
        raise InvalidConfig("share", f"must be > 0 (the relative amount of this source), got {share}")


def check_range(key: str, pair: tuple[float, float], minimum: float) -> None:
    low, high = pair
    if not minimum < low <= high:
        raise InvalidConfig(key, f"must be [low, high] with {minimum} < low <= high, got {list(pair)}")
