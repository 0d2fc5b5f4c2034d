"""Where data lives: local paths and URIs (s3://, gs://, hdfs://, abfs://, file://) as pyarrow filesystems.

It also owns publishing: an output appears at its final name whole or not at all, and on local disk it
survives a power loss once published. (The cache of model dirs fetched from a URI is runtime/model/cache.py.)

Credentials and endpoints come from each store's standard environment, as pyarrow reads it (for S3:
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, and AWS_ENDPOINT_URL for S3-compatible stores).
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from runtime.errors import ConfigurationError, ScorerError, StorageError, first_line
from runtime.model.cache import URI_SCHEME

TEMP_MARKER = ".tmp-"
PARQUET_SUFFIX = ".parquet"
HIDDEN_PREFIXES = (".", "_")
NOT_A_PATH = {errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.ELOOP}  # no retry cures these


@dataclass(frozen=True)
class Location:
    """A file or prefix on some filesystem: `path` is the filesystem's own (bucket/key on object stores)."""

    filesystem: pafs.FileSystem
    path: str
    shown: str  # as the user wrote it (a URI or a path), for messages and records

    def __str__(self) -> str:
        return self.shown

    @classmethod
    def local(cls, path: str | os.PathLike[str]) -> Location:
        return cls(pafs.LocalFileSystem(), os.path.abspath(path), str(path))

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        return self.path.rsplit("/", 1)[0]

    def child(self, relative: str) -> Location:
        return Location(self.filesystem, f"{self.path}/{relative}", f"{self.shown.rstrip('/')}/{relative}")

    def sibling(self, name: str) -> Location:
        shown = self.shown.rstrip("/")
        return Location(self.filesystem, f"{self.parent}/{name}", f"{shown[: len(shown) - len(self.name)]}{name}")

    def info(self) -> pafs.FileInfo:
        try:
            return self.filesystem.get_file_info(self.path)
        except (OSError, pa.ArrowException) as exc:  # an object store that does not answer, or refuses
            raise StorageError(f"cannot reach {self} ({first_line(exc)})") from None

    def exists(self) -> bool:
        return self.info().type != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        return self.info().type == pafs.FileType.Directory

    def same_store(self, other: Location) -> bool:
        return self.filesystem.type_name == other.filesystem.type_name

    def real_path(self) -> str:
        """The path with symlinks resolved (local only), to tell whether two locations are the same place."""
        return os.path.realpath(self.path) if self.is_local else self.path

    def is_within(self, other: Location) -> bool:
        """True when this location is `other` or lies under it."""
        mine, theirs = self.real_path(), other.real_path().rstrip("/")
        return self.same_store(other) and (mine == theirs or mine.startswith(f"{theirs}/"))


def locate(text: str) -> Location:
    """A local path or a URI as a Location; a URI pyarrow cannot open is a ConfigurationError naming it."""
    if not URI_SCHEME.match(text):
        return Location.local(text)
    try:
        filesystem, path = pafs.FileSystem.from_uri(text)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot open {text} ({first_line(exc)}); check the URI and the store's credentials"
        ) from None
    return Location(filesystem, path.rstrip("/"), text)


def is_hidden(relative: str) -> bool:
    """A path with a part named `.x` or `_x`: staging files, `_temporary/`, `_SUCCESS`, as Spark and Hive write
    them and pyarrow datasets skip them."""
    return any(part.startswith(HIDDEN_PREFIXES) for part in relative.split("/"))


def parquet_files_under(root: Location) -> tuple[list[str], list[str]]:
    """(visible, hidden): the relative paths of the *.parquet files under ROOT, recursively, in a stable order."""
    selector = pafs.FileSelector(root.path, recursive=True)
    infos = root.filesystem.get_file_info(selector)
    prefix = f"{root.path.rstrip('/')}/"
    found = sorted(
        info.path[len(prefix) :]
        for info in infos
        if info.type == pafs.FileType.File and info.path.endswith(PARQUET_SUFFIX)
    )
    return [path for path in found if not is_hidden(path)], [path for path in found if is_hidden(path)]


def temp_name(name: str) -> str:
    """A hidden name beside NAME that never ends in .parquet, so a crash leaves nothing that looks like output."""
    return f".{name}{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's or a directory's data and metadata to the device (fsync works on any descriptor of it)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under ROOT, deepest first: a staging tree made durable before it is renamed."""
    for directory, _, files in os.walk(root, topdown=False):
        for name in files:
            fsync_path(os.path.join(directory, name))
        fsync_path(directory)


def fsync_before_rename(source: str | os.PathLike[str]) -> None:
    """Make a finished file or staging tree durable: else a rename can reach the disk before the data."""
    if os.path.isdir(source):
        fsync_tree(Path(source))
    else:
        fsync_path(source)


def durable_replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Rename SOURCE over TARGET so that after a power loss TARGET is either the old or the complete new one.

    Without the fsync before, the rename can reach the disk before the data (an empty "atomic" output); without
    the fsync of the directory after, the rename itself can be lost.
    """
    fsync_before_rename(source)
    os.replace(source, target)
    fsync_path(os.path.dirname(os.path.abspath(target)))


AT_FDCWD = -100  # linux/fcntl.h: paths relative to the working directory
RENAME_EXCHANGE = 2  # linux/fs.h


def exchange_paths(first: str | os.PathLike[str], second: str | os.PathLike[str]) -> bool:
    """Swap two existing paths (files or non-empty dirs) in one atomic step; False where the system cannot.

    Linux's renameat2(RENAME_EXCHANGE), through ctypes as Python has no binding. False off Linux, with a libc
    before glibc 2.28 that lacks the function, or on a filesystem that does not support the flag.
    """
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), os.fspath(first), None, os.fspath(second))


def durable_exchange(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Publish SOURCE (a finished dir or file) at TARGET in one atomic, durable step; the old TARGET, if there
    was one, is left at SOURCE's name for the caller to remove.

    Why not `durable_replace`: a dir cannot be renamed over a non-empty dir, and moving the old one aside first
    leaves a moment with no TARGET. The exchange leaves at TARGET the old or the new one, whenever a crash or a
    power loss comes. Where `exchange_paths` is unavailable, the fallback is three renames through a hidden name
    beside TARGET: a crash between the first two leaves no TARGET and the old one under that `.tmp-` name.
    """
    fsync_before_rename(source)
    if not os.path.lexists(target):
        os.rename(source, target)
    elif not exchange_paths(source, target):
        aside = os.path.join(os.path.dirname(os.path.abspath(target)), temp_name(os.path.basename(target)))
        os.rename(target, aside)
        os.rename(source, target)
        os.rename(aside, source)
    for directory in {os.path.dirname(os.path.abspath(path)) for path in (source, target)}:
        fsync_path(directory)


def make_parents(location: Location) -> None:
    """Create OUT's parent directories on local disk, each made durable; object stores have no directories."""
    if not location.is_local:
        return
    missing = []
    parent = Path(location.parent)
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    Path(location.parent).mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        fsync_path(created.parent)


def publish(staging: Location, out: Location) -> None:
    """Put the finished STAGING object at OUT in one step, replacing any old OUT.

    Local disk: fsync + rename + fsync of the directory. HDFS: a rename. S3 and GCS: a server-side copy then a
    delete of the staging key; the copy creates OUT whole, so readers see the old OUT or the new one. (S3's
    single-request copy stops at 5 GB: keep each output below that, e.g. by splitting the input into files.)
    """
    if out.is_local:
        durable_replace(staging.path, out.path)
    else:
        out.filesystem.move(staging.path, out.path)


def discard(location: Location) -> None:
    with suppress(OSError, pa.ArrowException):
        location.filesystem.delete_file(location.path)


def write_failure(out: Location, exc: BaseException) -> StorageError:
    return StorageError(f"could not write {out} ({first_line(exc)}); {out} was left as it was")


def unwritable(out: Location, exc: BaseException) -> ScorerError:
    """A path that can never be written (a parent that is a file, say) is the user's to fix; a store that fails
    (permission, disk full, no answer) may pass."""
    message = f"cannot write {out} ({first_line(exc)})"
    if isinstance(exc, OSError) and exc.errno in NOT_A_PATH:
        return ConfigurationError(f"{message}; choose another path")
    return StorageError(message)


def read_small(location: Location) -> bytes:
    """The bytes of a small file (a run summary): no file there is the user's to fix, a failing store may pass."""
    if location.info().type != pafs.FileType.File:
        raise ConfigurationError(f"{location} is not a file")
    try:
        with location.filesystem.open_input_stream(location.path) as stream:
            return stream.read()
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot read {location} ({first_line(exc)})") from None


def check_writable(out: Location) -> None:
    """Create and remove a hidden file beside OUT, so that a path that cannot be written fails before the work."""
    probe = out.sibling(temp_name(out.name))
    try:
        make_parents(out)
        with out.filesystem.open_output_stream(probe.path):
            pass
    except (OSError, pa.ArrowException) as exc:
        raise unwritable(out, exc) from None
    finally:
        discard(probe)


@contextmanager
def atomic_output(out: Location) -> Iterator[pa.NativeFile]:
    """A stream whose bytes appear at OUT only if the block finishes; otherwise OUT stays as it was.

    Why a staging key and not an aborted multipart upload on object stores: pyarrow's S3 stream cannot be
    aborted from Python (close(), and even garbage collection, complete the upload: apache/arrow#40502), so
    writing straight to OUT would publish a partial object on any failure. A hidden staging key beside OUT is
    written instead and moved over OUT at the end (see `publish`); a failure deletes it. After a SIGKILL what is
    left is an incomplete multipart upload (invisible, removed by the bucket's AbortIncompleteMultipartUpload
    lifecycle rule) or, if the kill came between the upload and the move, a hidden `.OUT.tmp-*` object.
    A write that fails (disk full, file too large, store refusing) is a StorageError naming OUT and the cause.
    """
    staging = out.sibling(temp_name(out.name))
    try:
        make_parents(out)
        stream = out.filesystem.open_output_stream(staging.path)
    except (OSError, pa.ArrowException) as exc:
        raise write_failure(out, exc) from None
    try:
        try:
            yield stream
            stream.close()
            publish(staging, out)
        except (OSError, pa.ArrowException) as exc:
            raise write_failure(out, exc) from None
    except BaseException:
        with suppress(OSError, pa.ArrowException):
            stream.close()
        discard(staging)
        raise
