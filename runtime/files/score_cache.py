"""A score cache across nights: each distinct (model, output options, text, pair) is scored once, ever.

Layout: URI/shard=XX/part-<uuid>.parquet, XX the first byte of the row key (256 shards). Every write adds an
immutable, key-sorted Parquet file through `atomic_output`, so concurrent writers never touch the same file and a
crash leaves at most a hidden temp file (never read). A lookup reads only the key column of the shards a window
touches, filtered to that window's keys, so memory follows the window, not the cache (100M entries are never
loaded). Compaction merges a shard's files into one (publish first, then delete the merged ones); a reader that
finds a file gone lists again.

Why Parquet files over pyarrow's filesystems rather than SQLite or LMDB: pyarrow is already the scorer's I/O layer
and works the same on local disk, S3, GCS and HDFS; SQLite and LMDB need a local, lockable file and do not work on
object storage, where nightly tables usually live.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from runtime.errors import ConfigurationError, StorageError, first_line
from runtime.files.storage import PARQUET_SUFFIX, Location, atomic_output, check_writable, discard, locate
from runtime.scoring.scorer import Scorer, Scores

KEY_BYTES = 16  # blake2b-128: a collision among 1e8 entries has odds of about 1e-23
SHARD_PREFIX = "shard="
PART_PREFIX = "part-"
FLUSH_ENTRIES = 100_000  # new entries held before they are written: bounds a writer's memory
ROW_GROUP_ROWS = 16_384
READ_ATTEMPTS = 5  # a compaction deleting files under a reader makes it list again, at most this often
SECONDS_PER_DAY = 86_400


# One entry: the row key and the outputs a scored row needs; `written_at` lets compaction expire it.
ENTRY_SCHEMA = pa.schema(
    [
        ("key", pa.binary(KEY_BYTES)),
        ("probabilities", pa.list_(pa.float32())),
        ("logits", pa.list_(pa.float32())),
        ("chunks", pa.int32()),
        ("truncated", pa.bool_()),
        ("written_at", pa.int64()),  # seconds since the epoch
    ]
)


def namespace(scorer: Scorer) -> bytes:
    """The digest of everything besides the text that decides a row's outputs: the model and the options that
    change scores (column names and prefix do not). Logits are always stored, so --logits does not split the cache;
    the precision is the arithmetic actually used (auto resolves per host)."""
    decides = {
        "model_identity": scorer.manifest.identity,
        "function_to_apply": scorer.function_to_apply,
        "long_text": scorer.long_text.as_record(),
        "precision": scorer.chosen_precision.precision,
    }
    return hashlib.sha256(json.dumps(decides, sort_keys=True).encode()).digest()


def row_keys(space: bytes, texts: Sequence[str | None], pairs: Sequence[str | None] | None, rows: np.ndarray) -> list[bytes]:
    """One key per row of `rows`: blake2b keyed by the namespace over the text and its pair (length-prefixed, so
    ("ab", "c") and ("a", "bc") differ, and a single text differs from a pair with an empty second text)."""
    base = hashlib.blake2b(digest_size=KEY_BYTES, key=space)
    keys = []
    for row in rows:
        digest = base.copy()
        text = texts[row].encode()  # type: ignore[union-attr]
        if pairs is None:
            digest.update(b"\x00" + text)
        else:
            digest.update(b"\x01" + len(text).to_bytes(8, "little") + text + pairs[row].encode())  # type: ignore[union-attr]
        keys.append(digest.digest())
    return keys


def shard_of(key: bytes) -> str:
    return f"{SHARD_PREFIX}{key[0]:02x}"


def first_bytes(keys: pa.Array) -> np.ndarray:
    """The first byte of every key of a fixed-size binary array: the shard numbers, without a Python loop."""
    data = np.frombuffer(keys.buffers()[1], dtype=np.uint8)[keys.offset * KEY_BYTES :]
    return data[: len(keys) * KEY_BYTES].reshape(-1, KEY_BYTES)[:, 0]


def is_part(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    parent = path.rsplit("/", 2)[-2] if path.count("/") else ""
    return name.startswith(PART_PREFIX) and name.endswith(PARQUET_SUFFIX) and parent.startswith(SHARD_PREFIX)


def list_parts(root: Location) -> dict[str, list[str]]:
    """shard dir name -> its part files, from one recursive listing (one paginated LIST on object stores)."""
    try:
        infos = root.filesystem.get_file_info(pafs.FileSelector(root.path, recursive=True, allow_not_found=True))
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot read the score cache {root} ({first_line(exc)})") from None
    parts: dict[str, list[str]] = {}
    for info in infos:
        if info.type == pafs.FileType.File and is_part(info.path):
            parts.setdefault(info.path.rsplit("/", 2)[-2], []).append(info.path)
    return {shard: sorted(paths) for shard, paths in sorted(parts.items())}


def open_cache_root(uri: str) -> Location:
    """--score-cache checked before any work: a directory or prefix (made if missing) that can be written."""
    root = locate(uri)
    if root.info().type == pafs.FileType.File:
        raise ConfigurationError(f"score cache {uri} is a file; --score-cache takes a directory or a prefix")
    check_writable(root.child("probe"))
    list_parts(root)
    return root


def is_vanished(exc: BaseException) -> bool:
    """A part deleted by a compaction between our listing and our read."""
    return isinstance(exc, FileNotFoundError) or "not found" in str(exc).lower() or "no such file" in str(exc).lower()


def read_parts(root: Location, paths: list[str]) -> pa.Table:
    """Every entry of `paths`, over any filesystem."""
    return ds.dataset(paths, schema=ENTRY_SCHEMA, filesystem=root.filesystem, format="parquet").to_table()


@dataclass
class ScoreCache:
    """Looks rows up by key before `scorer` scores them, and adds what it scored; `score` stands in for
    `Scorer.score`, so an engine (or a Python user) switches with one line:

    >>> cache = ScoreCache.open("s3://bucket/score-cache", Scorer("models/demo"))
    >>> cache.score(["I love it"]).cached
    """

    root: Location
    scorer: Scorer
    flush_entries: int = FLUSH_ENTRIES

    def __post_init__(self) -> None:
        self.space = namespace(self.scorer)
        self.parts = list_parts(self.root)  # listed once; again only when a compaction removed a part under us
        self.pending: list[pa.Table] = []
        self.dataset: ds.Dataset | None = None  # over self.parts; None: build it again

    @classmethod
    def open(cls, uri: str, scorer: Scorer) -> ScoreCache:
        return cls(open_cache_root(uri), scorer)

    def lookup(self, keys: list[bytes]) -> pa.Table:
        """The stored entries for `keys` (a key may appear twice: two writers, or a compaction under way).

        One dataset over the listed parts serves every window: its fragments keep their footers once read, so a
        window costs the key columns of its row groups, not a footer per part."""
        wanted = pa.array(keys, pa.binary(KEY_BYTES))
        for _ in range(READ_ATTEMPTS):
            if self.dataset is None:
                paths = [path for shard in self.parts.values() for path in shard]
                if not paths:
                    return ENTRY_SCHEMA.empty_table()
                self.dataset = ds.dataset(paths, schema=ENTRY_SCHEMA, filesystem=self.root.filesystem, format="parquet")
            try:
                return self.dataset.to_table(filter=pc.field("key").isin(wanted))
            except (OSError, pa.ArrowException) as exc:
                if not is_vanished(exc):
                    raise StorageError(f"cannot read the score cache {self.root} ({first_line(exc)})") from None
                self.parts, self.dataset = list_parts(self.root), None
        raise StorageError(f"the score cache {self.root} kept changing under this run (a compaction?); run again")

    def score(
        self,
        texts: Sequence[str | None],
        pairs: Sequence[str | None] | None = None,
        on_rows: Callable[[int], None] | None = None,
    ) -> Scores:
        """`Scorer.score` for a window, with the rows found in the cache not scored; new rows are scored and added."""
        valid = np.array([text is not None and (pairs is None or pairs[i] is not None) for i, text in enumerate(texts)], bool)
        present = np.flatnonzero(valid)
        keys = row_keys(self.space, texts, pairs, present)
        found = self.lookup(keys) if keys else ENTRY_SCHEMA.empty_table()
        index = {key: row for row, key in enumerate(found.column("key").to_pylist())}
        stored = np.array([index.get(key, -1) for key in keys], dtype=np.int64)
        hits = present[stored >= 0]
        todo = np.setdiff1d(np.arange(len(texts)), hits)  # misses and null rows, in order
        fresh = self.scorer.score(
            [texts[i] for i in todo], None if pairs is None else [pairs[i] for i in todo], on_rows=on_rows
        )
        labels = len(self.scorer.labels)
        probabilities = np.zeros((len(texts), labels), np.float32)
        logits, chunks, truncated = np.zeros_like(probabilities), np.zeros(len(texts), np.int32), np.zeros(len(texts), bool)
        probabilities[todo], logits[todo], chunks[todo], truncated[todo] = (
            fresh.probabilities, fresh.logits, fresh.chunks, fresh.truncated_rows
        )
        taken = found.take(pa.array(stored[stored >= 0]))
        probabilities[hits] = matrix(taken.column("probabilities"), labels)
        logits[hits] = matrix(taken.column("logits"), labels)
        chunks[hits] = taken.column("chunks").to_numpy()
        truncated[hits] = taken.column("truncated").to_numpy(zero_copy_only=False)
        if on_rows is not None and len(hits):
            on_rows(len(hits))
        self.add([key for key, row in zip(keys, stored) if row < 0], present[stored < 0], probabilities, logits, chunks, truncated)
        return Scores(
            label_ids=probabilities.argmax(axis=1),
            probabilities=probabilities,
            logits=logits,
            valid=valid,
            truncated=int(truncated.sum()),
            chunks=chunks,
            truncated_rows=truncated,
            deduplicated=fresh.deduplicated,
            cached=len(hits),
        )

    def add(
        self,
        keys: list[bytes],
        rows: np.ndarray,
        probabilities: np.ndarray,
        logits: np.ndarray,
        chunks: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """Hold the new entries (one per distinct key) and write them once FLUSH_ENTRIES are held."""
        if not keys:
            return
        _, firsts = np.unique(np.array(keys, dtype=object), return_index=True)
        rows, picked = rows[firsts], [keys[i] for i in firsts]
        labels = probabilities.shape[1]
        self.pending.append(
            pa.table(
                {
                    "key": pa.array(picked, pa.binary(KEY_BYTES)),
                    "probabilities": as_lists(probabilities[rows], labels),
                    "logits": as_lists(logits[rows], labels),
                    "chunks": pa.array(chunks[rows], pa.int32()),
                    "truncated": pa.array(truncated[rows], pa.bool_()),
                    "written_at": pa.array(np.full(len(rows), int(time.time())), pa.int64()),
                },
                schema=ENTRY_SCHEMA,
            )
        )
        if sum(table.num_rows for table in self.pending) >= self.flush_entries:
            self.flush()

    def flush(self) -> None:
        """Write the held entries: one new part per shard they fall in."""
        if not self.pending:
            return
        table = pa.concat_tables(self.pending)
        self.pending = []
        for shard, part in write_shards(self.root, table).items():
            self.parts.setdefault(shard, []).append(part)
        self.dataset = None


def matrix(values: pa.ChunkedArray, labels: int) -> np.ndarray:
    """A list<float32> column of rows with `labels` values each as a [rows, labels] matrix."""
    flat = pc.list_flatten(values).to_numpy() if len(values) else np.zeros(0, np.float32)
    return flat.reshape(-1, labels)


def as_lists(values: np.ndarray, labels: int) -> pa.ListArray:
    offsets = pa.array(np.arange(0, (len(values) + 1) * labels, labels, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1), pa.float32()))


def write_part(root: Location, shard: str, table: pa.Table) -> str:
    """One immutable, key-sorted part in a shard, published whole (a crash leaves only a hidden temp file)."""
    part = root.child(f"{shard}/{PART_PREFIX}{uuid.uuid4().hex}{PARQUET_SUFFIX}")
    with atomic_output(part) as stream:
        pq.write_table(table.sort_by("key"), stream, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    return part.path


def write_shards(root: Location, table: pa.Table) -> dict[str, str]:
    """Split `table` by shard and write one part per shard; shard -> the part written."""
    shards = first_bytes(table.column("key").combine_chunks())
    written = {}
    for number in np.unique(shards):
        shard = f"{SHARD_PREFIX}{number:02x}"
        written[shard] = write_part(root, shard, table.filter(pa.array(shards == number)))
    return written


@dataclass(frozen=True)
class CacheStats:
    entries: int
    shards: int
    parts: int
    bytes: int

    def line(self) -> str:
        per_million = self.bytes / self.entries * 1e6 / (1 << 20) if self.entries else 0.0
        return (
            f"{self.entries} entries in {self.shards} shard(s), {self.parts} part file(s), {self.bytes} bytes "
            f"({per_million:.1f} MiB per million entries)"
        )


def cache_stats(root: Location) -> CacheStats:
    """Entries (from the parts' footers: no data read), shards, part files and bytes on the store."""
    parts = list_parts(root)
    paths = [path for shard in parts.values() for path in shard]
    entries = sum(pq.read_metadata(path, filesystem=root.filesystem).num_rows for path in paths)
    sizes = sum(info.size for info in root.filesystem.get_file_info(paths))
    return CacheStats(entries, len(parts), len(paths), sizes)


def newest_per_key(table: pa.Table) -> pa.Table:
    """One entry per key (the newest), sorted by key: what a merged part holds."""
    table = table.sort_by([("key", "ascending"), ("written_at", "descending")])
    if table.num_rows < 2:
        return table
    keys = np.frombuffer(b"".join(table.column("key").to_pylist()), np.uint8).reshape(-1, KEY_BYTES)
    first = np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)]
    return table.filter(pa.array(first))


def compact(root: Location, older_than_days: float | None = None) -> tuple[int, int]:
    """Merge each shard's parts into one (and drop entries older than `older_than_days`); (parts merged, entries
    expired). The merged part is published before the old ones are deleted, so a reader sees every entry at every
    moment (some twice, which lookups allow); a reader whose listed part vanished lists again."""
    merged = expired = 0
    cutoff = None if older_than_days is None else time.time() - older_than_days * SECONDS_PER_DAY
    for shard, paths in list_parts(root).items():
        if len(paths) < 2 and cutoff is None:
            continue
        table = newest_per_key(read_parts(root, paths))
        if cutoff is not None:
            kept = table.filter(pc.field("written_at") >= int(cutoff))
            expired += table.num_rows - kept.num_rows
            table = kept
        if table.num_rows:
            write_part(root, shard, table)
        for path in paths:
            discard(Location(root.filesystem, path, path))
        merged += len(paths)
    return merged, expired
