"""A directory tree for shards and checkpoints, with durable, atomic writes.

The root is a local path or any pyarrow filesystem URI (``s3://``, ``gs://``,
``hdfs://``, ``file://``). On a local filesystem a write is: temp file, fsync,
rename, fsync of the directory. Object stores have no fsync and no atomic
rename; there ``move`` is what the store offers (documented in the README).

Every failure of the filesystem is a ``StorageError`` of one line that names
the file and the reason (``cannot write /out/_staging/...: No space left on
device``), never a bare ``OSError`` without its path.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.fs as pafs

from labeler.errors import StorageError


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
        with _failing("write", target):
            if self.local:
                _makedirs(os.path.dirname(target))
                with open(target, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                if sync_dir:
                    _fsync_dir(os.path.dirname(target))  # the new name survives a power cut
                return
            self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with self.fs.open_output_stream(target) as out:
                out.write(data)

    def sync_dirs(self, rels: Iterable[str]) -> None:
        """Make the names written into the directories of ``rels`` durable."""
        if self.local:
            for directory in sorted({os.path.dirname(self.path(rel)) for rel in rels}):
                with _failing("sync", directory):
                    _fsync_dir(directory)

    def write_atomic(self, rel: str, data: bytes) -> None:
        """Replace ``rel`` with ``data`` atomically and durably."""
        temp = _temp_name(rel)
        self.write(temp, data)
        self.move(temp, rel)

    def put_if_absent(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` with ``data`` only if no file has that name; ``True`` if this
        call created it. Durable either way it answers.

        Locally this is exclusive: the bytes go to a fsynced temp file (named
        ``.<name>.<random>.tmp`` beside it) that is ``link()``ed to the name,
        which fails if the name exists, so of two writers racing for one name
        exactly one wins and the loser's bytes are never visible. pyarrow's
        object-store filesystems offer no conditional create, so there it is a
        check and then a write: a window as short as one request remains (the
        README says so).
        """
        if not self.local:
            if self.exists(rel):
                return False
            self.write(rel, data)
            return True
        target = self.path(rel)
        temp = _temp_name(rel)
        self.write(temp, data, sync_dir=False)
        with _failing("create", target):
            try:
                os.link(self.path(temp), target)
            except FileExistsError:
                return False
            finally:
                _unlink_if_there(self.path(temp))
            _fsync_dir(os.path.dirname(target))
        return True

    def publish(self, src: str, dst: str) -> bool:
        """Give the file at ``src`` the name ``dst``, never replacing a file there;
        ``True`` if it was published now, ``False`` if ``dst`` already existed
        (``src``, if still there, is left for the caller to judge). A ``src`` that
        is gone while ``dst`` exists was published by someone else: ``False`` too."""
        source, target = self.path(src), self.path(dst)
        with _failing("publish", f"{source} as {target}"):
            if not self.local:
                if self.exists(dst):
                    return False
                self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
                self.fs.move(source, target)
                return True
            _makedirs(os.path.dirname(target))
            try:
                os.link(source, target)
            except FileExistsError:
                return False
            except FileNotFoundError:
                if os.path.exists(target):
                    return False
                raise
            _unlink_if_there(source)  # a recovery publishing the same file may be first
            _fsync_dir(os.path.dirname(target))
            if os.path.dirname(source) != os.path.dirname(target):
                _fsync_dir(os.path.dirname(source))
        return True

    def move(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst`` (replacing it) and make the rename durable."""
        source, target = self.path(src), self.path(dst)
        with _failing("rename", f"{source} to {target}"):
            if self.local:
                _makedirs(os.path.dirname(target))
                os.replace(source, target)
                _fsync_dir(os.path.dirname(target))
                return
            self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            self.fs.move(source, target)

    def read(self, rel: str) -> bytes | None:
        """The bytes at ``rel``, or ``None`` when there is no such file."""
        target = self.path(rel)
        with _failing("read", target):
            try:
                with self.fs.open_input_stream(target) as src:
                    return bytes(src.read())
            except FileNotFoundError:
                return None

    def exists(self, rel: str) -> bool:
        target = self.path(rel)
        with _failing("look up", target):
            return bool(self.fs.get_file_info(target).type != pafs.FileType.NotFound)

    def list(self, rel: str) -> list[str]:
        """Names of the files directly under ``rel`` (empty if it does not exist)."""
        target = self.path(rel)
        with _failing("list", target):
            infos = self.fs.get_file_info(pafs.FileSelector(target, allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.File)

    def delete(self, rel: str) -> None:
        target = self.path(rel)
        with _failing("delete", target):
            try:
                self.fs.delete_file(target)
            except FileNotFoundError:
                pass


@contextmanager
def _failing(action: str, path: str) -> Iterator[None]:
    """Turn an ``OSError`` into a ``StorageError`` naming ``path`` and the reason."""
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:
        if isinstance(exc.errno, int) and exc.errno > 0:
            reason = os.strerror(exc.errno)  # pyarrow's own text repeats the path
        else:
            reason = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename and str(exc.filename) not in path:
            reason = f"{reason} ({exc.filename})"
        raise StorageError(action, path, " ".join(reason.split()), exc.errno) from exc


def _makedirs(directory: str) -> None:
    """``os.makedirs``, saying "Not a directory" when a file is in the way."""
    try:
        os.makedirs(directory, exist_ok=True)
    except FileExistsError:
        blocker = directory
        while blocker and not os.path.isfile(blocker):
            blocker = os.path.dirname(blocker)
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                 blocker or directory) from None


def _temp_name(rel: str) -> str:
    head, _, name = rel.rpartition("/")
    temp = f".{name}.{uuid.uuid4().hex}.tmp"
    return f"{head}/{temp}" if head else temp


def _unlink_if_there(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
