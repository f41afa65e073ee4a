"""Where a band's clips come from: the table of data sources, one module per kind.

Each source is a frozen dataclass of its YAML parameters (`task.sources: [{kind: ...}]`)
with `clips(task, band, split, n, generator, cache_dir)` yielding chunks of `Clips` for a
split, "train" or "val" (see base.py). Synthetic sources draw `n` clips (their share of
the split); a folder yields every clip its split holds. Heavy libraries (pyroomacoustics,
soundfile) load only when their source is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from objectives.errors import InvalidConfig
from objectives.task.sources.folder import Folder
from objectives.task.sources.free_field import FreeField
from objectives.task.sources.reverberant import Reverberant

if TYPE_CHECKING:
    import torch

    from objectives.task.config import Band, TaskConfig
    from objectives.task.synthesis import Clips

# The table of sources: a new kind is one module with its dataclass (validate/clips/fingerprint) and one line here.
SOURCES: dict[str, type] = {"free_field": FreeField, "reverberant": Reverberant, "folder": Folder}


def validate_sources(task: TaskConfig) -> None:
    """Known kinds with valid parameters; a folder stands alone (it brings its own array)."""
    if not task.sources:
        raise InvalidConfig("sources", "needs at least one source, e.g. [{kind: free_field}]")
    kinds = [source.kind for source in task.sources]
    if "folder" in kinds and len(kinds) > 1:
        raise InvalidConfig("sources", "a folder source cannot be mixed with others: it brings its own "
                            "array and sample rate; list it alone")
    for i, source in enumerate(task.sources):
        if source.kind not in SOURCES:
            raise InvalidConfig(f"sources[{i}].kind", f"unknown source {source.kind!r}; use one of {list(SOURCES)}")
        try:
            source.validate(task)
        except InvalidConfig as err:
            raise InvalidConfig(f"sources[{i}].{err.key}", err.message) from None


def source_from_dict(data: dict[str, Any]) -> Any:
    """A source from plain data (`to_dict` output): lists back to tuples."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in SOURCES:
        raise InvalidConfig("kind", f"unknown source {kind!r}; use one of {list(SOURCES)}")
    return SOURCES[kind](**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


def split_counts(task: TaskConfig, split: str) -> list[int]:
    """Clips each source contributes to a split: its share of n_train or n_val, summing exactly."""
    total = task.n_train if split == "train" else task.n_val
    shares = [getattr(source, "share", 1.0) for source in task.sources]  # a folder stands alone: no share
    counts = [int(total * share / sum(shares)) for share in shares]
    counts[0] += total - sum(counts)
    return counts


def source_clips(task: TaskConfig, band: Band, split: str, generator: torch.Generator,
                 cache_dir: Path | None) -> Iterator[Clips]:
    """Every chunk of clips of a split, source by source, in a fixed order (deterministic)."""
    for source, n in zip(task.sources, split_counts(task, split)):
        yield from source.clips(task, band, split, n, generator, cache_dir)
