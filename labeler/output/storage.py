"""A directory tree for shards and checkpoints, with durable, atomic writes.

The root is a local path or any pyarrow filesystem URI (``s3://``, ``gs://``,
``hdfs://``, ``file://``). On a local filesystem a write is: temp file, fsync,
rename, fsync of the directory. Object stores have no fsync and no atomic
rename; there ``move`` is what the store offers (documented in the README).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import pyarrow.fs as pafs


class Storage:
    """Relative paths (``a/b/c``) under one root."""

    def __init__(self, root: str) -> None:
        if "://" in root:
            fs, path = pafs.FileSystem.from_uri(root)
        else:
            fs, path = pafs.LocalFileSystem(), str(Path(root).absolute())
        self.fs = fs
        self.root = path.rstrip("/")
        self.local = isinstance(fs, pafs.LocalFileSystem)
        self.uri = root

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def write(self, rel: str, data: bytes, sync_dir: bool = True) -> None:
        """Write ``data`` at ``rel`` and make it durable (not atomic: use for staging).

        ``sync_dir=False`` leaves the new name's durability to a later
        ``sync_dirs`` (one directory fsync for many files)."""
        target = self.path(rel)
        if self.local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if sync_dir:
                _fsync_dir(os.path.dirname(target))  # the new name survives a power cut too
            return
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(target) as out:
            out.write(data)

    def sync_dirs(self, rels: Iterable[str]) -> None:
        """Make the names written into the directories of ``rels`` durable."""
        if self.local:
            for directory in sorted({os.path.dirname(self.path(rel)) for rel in rels}):
                _fsync_dir(directory)

    def write_atomic(self, rel: str, data: bytes) -> None:
        """Replace ``rel`` with ``data`` atomically and durably."""
        head, _, name = rel.rpartition("/")
        temp = f"{head}/.{name}.{uuid.uuid4().hex}.tmp" if head else f".{name}.tmp"
        self.write(temp, data)
        self.move(temp, rel)

    def put_if_absent(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` with ``data`` only if no file has that name; ``True`` if this
        call created it. Durable either way it answers.

        Locally this is exclusive: the bytes go to a fsynced temp file that is
        ``link()``ed to the name, which fails if the name exists, so of two
        writers racing for one name exactly one wins and the loser's bytes are
        never visible. pyarrow's object-store filesystems offer no conditional
        create, so there it is a check and then a write: a window as short as one
        request remains (the README says so).
        """
        if not self.local:
            if self.exists(rel):
                return False
            self.write(rel, data)
            return True
        target = self.path(rel)
        head, _, name = rel.rpartition("/")
        temp = f"{head}/.{name}.{uuid.uuid4().hex}.tmp" if head else f".{name}.tmp"
        self.write(temp, data, sync_dir=False)
        try:
            os.link(self.path(temp), target)
        except FileExistsError:
            return False
        finally:
            os.unlink(self.path(temp))
        _fsync_dir(os.path.dirname(target))
        return True

    def publish(self, src: str, dst: str) -> bool:
        """Give the file at ``src`` the name ``dst``, never replacing a file there;
        ``True`` if it was published now, ``False`` if ``dst`` already existed
        (``src`` is then left in place for the caller to judge)."""
        if not self.local:
            if self.exists(dst):
                return False
            self.move(src, dst)
            return True
        source, target = self.path(src), self.path(dst)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            os.link(source, target)
        except FileExistsError:
            return False
        os.unlink(source)
        _fsync_dir(os.path.dirname(target))
        if os.path.dirname(source) != os.path.dirname(target):
            _fsync_dir(os.path.dirname(source))
        return True

    def move(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst`` (replacing it) and make the rename durable."""
        source, target = self.path(src), self.path(dst)
        if self.local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(source, target)
            _fsync_dir(os.path.dirname(target))
            return
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        self.fs.move(source, target)

    def read(self, rel: str) -> bytes | None:
        """The bytes at ``rel``, or ``None`` when there is no such file."""
        try:
            with self.fs.open_input_stream(self.path(rel)) as src:
                return bytes(src.read())
        except FileNotFoundError:
            return None

    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def list(self, rel: str) -> list[str]:
        """Names of the files directly under ``rel`` (empty if it does not exist)."""
        infos = self.fs.get_file_info(pafs.FileSelector(self.path(rel), allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.File)

    def delete(self, rel: str) -> None:
        try:
            self.fs.delete_file(self.path(rel))
        except FileNotFoundError:
            pass


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
