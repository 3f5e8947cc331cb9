"""The files of a partition's epoch log: the ``Checkpoint`` record, its encoding, and
the names of epoch files, staged shards and state segments.

The names carry what garbage collection needs to judge a file without
reading it: its epoch, and the owner that wrote it (see the rules in
``labeler.output.checkpoint``). Epochs are compared as numbers, never as
strings, so the widths below are for people listing a directory.

>>> paths = Paths("p+o")
>>> paths.epoch_path(3, 12)
'_checkpoints/p%2Bo/p0003.epochs/0000000012.ckpt'
>>> epoch_of_file("0000000012.ckpt"), segment_key("00000012-a1b2.seg")
(12, (12, 'a1b2'))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import msgpack

CHECKPOINT_DIR = "_checkpoints"
STAGING_DIR = "_staging"
OWNER = re.compile(r"[A-Za-z0-9]{1,32}")  # an owner id goes in file names, between dashes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a partition has durably done: one entry of its epoch log."""

    stream: str
    partition: int
    epoch: int
    offsets: dict[str, int]  # topic -> next offset to read (last processed + 1)
    state: dict[str, Any]  # PartitionJoin.snapshot(); {} before any commit
    shards: list[tuple[str, str]] = field(default_factory=list)  # (staged, final) to publish
    segments: list[tuple[int, str]] = field(default_factory=list)  # (epoch, owner), kept
    owner: str = ""  # the worker process that wrote it
    claim: bool = False  # a take-over's claim, not a commit

    @property
    def fresh(self) -> bool:
        """No commit before it: nothing to restore, Kafka's committed offsets (or the
        reset policy) say where to start."""
        return not self.state


class Paths:
    """Where one stream's files live, relative to ``output.path``."""

    def __init__(self, stream: str) -> None:
        self._dir = f"{CHECKPOINT_DIR}/{quote(stream, safe='')}"
        self._staging = f"{STAGING_DIR}/{quote(stream, safe='')}"

    def epoch_dir(self, partition: int) -> str:
        return f"{self._dir}/p{partition:04d}.epochs"

    def epoch_path(self, partition: int, epoch: int) -> str:
        return f"{self.epoch_dir(partition)}/{epoch:010d}.ckpt"

    def legacy(self, partition: int) -> str:
        """The single checkpoint file of the format before the epoch log."""
        return f"{self._dir}/p{partition:04d}.ckpt"

    def staging_dir(self, partition: int) -> str:
        return f"{self._staging}/p{partition:04d}"

    def staged_path(self, partition: int, epoch: int, owner: str, index: int) -> str:
        return f"{self.staging_dir(partition)}/{epoch:08d}-{owner}-{index:04d}.parquet"

    def segment_dir(self, partition: int) -> str:
        return f"{self._dir}/p{partition:04d}.state"

    def segment_path(self, partition: int, epoch: int, owner: str) -> str:
        return f"{self.segment_dir(partition)}/{epoch:08d}-{owner}.seg"


def epoch_of_file(name: str) -> int | None:
    """``0000000012.ckpt`` -> 12; ``None`` for any other name (temp files included)."""
    stem, dot, ext = name.partition(".")
    if not (dot and ext == "ckpt" and stem.isdigit() and len(stem) == 10):
        return None  # not a name the log writes (``epoch_path``): not an epoch of it
    return int(stem)


def epoch_of_temp(name: str) -> int | None:
    """The epoch of a put-if-absent temp file, ``.0000000012.ckpt.<random>.tmp`` -> 12."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return None
    return epoch_of_file(name[1:].split(".ckpt.", 1)[0] + ".ckpt")


def epoch_of_staged(name: str) -> int | None:
    """The epoch a staged file's name begins with (``00000012-<owner>-0000.parquet``)."""
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def segment_key(name: str) -> tuple[int, str] | None:
    """``00000012-<owner>.seg`` -> (12, owner)."""
    if not name.endswith(".seg"):
        return None
    head, _, owner = name[:-4].partition("-")
    return (int(head), owner) if head.isdigit() and owner else None


def encode(checkpoint: Checkpoint) -> bytes:
    """The checkpoint as msgpack (the payload of its frame)."""
    return msgpack.packb(
        {
            "stream": checkpoint.stream,
            "partition": checkpoint.partition,
            "epoch": checkpoint.epoch,
            "offsets": checkpoint.offsets,
            "state": checkpoint.state,
            "shards": checkpoint.shards,
            "segments": checkpoint.segments,
            "owner": checkpoint.owner,
            "claim": checkpoint.claim,
        },
        use_bin_type=True,
    )


def decode(payload: memoryview | bytes) -> Checkpoint:
    """The checkpoint ``encode`` wrote; ``ValueError``, ``KeyError`` or ``TypeError`` (or
    msgpack's errors) when the payload is not one."""
    doc = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    return Checkpoint(
        stream=doc["stream"], partition=doc["partition"], epoch=doc["epoch"],
        offsets=doc["offsets"], state=doc["state"],
        shards=[(s, f) for s, f in doc["shards"]],
        segments=[(e, o) for e, o in doc["segments"]], owner=doc["owner"],
        claim=doc["claim"])
