"""Size-capped, content-addressed parquet shards written by streaming.

A `ShardWriter` takes record batches of one config split and writes zstd parquet files of at most
`max_rows` rows and about `max_bytes` bytes (checked after every row group), so a million-row config
never sits in memory. Each file is named by the SHA-256 of its bytes, hashed while it is written
(`HashingSink`): `data/<config>/<split>-<sha8>.parquet` for a single shard, else
`<split>-<i>-of-<n>-<sha8>.parquet`. Content addressing keeps `datasets`' cache, which keys a local
folder by file names, from serving stale rows for a rebuilt folder.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from newsstance.release.staging import HashingSink

ROW_GROUP_SIZE = 1000


class ShardWriter:
    def __init__(self, release_dir: Path, config: str, split: str, schema: pa.Schema, max_rows: int, max_bytes: int):
        self.release_dir = release_dir
        self.folder = release_dir / "data" / config
        self.config = config
        self.split = split
        self.schema = schema
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.rows = 0
        self.nbytes = 0  # in-memory arrow size of the rows written (`dataset_size` on the card)
        self._done: list[tuple[Path, str, int]] = []  # temp path, sha256, rows
        self._sink: HashingSink | None = None
        self._writer: pq.ParquetWriter | None = None
        self._shard_rows = 0

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sink = HashingSink(self.folder / f".{self.split}-{len(self._done):05d}.tmp")
        self._writer = pq.ParquetWriter(self._sink, self.schema, compression="zstd")
        self._shard_rows = 0

    def _close_shard(self) -> None:
        if self._writer is None or self._sink is None:
            return
        self._writer.close()
        self._sink.close()
        self._done.append((self._sink.path, self._sink.digest.hexdigest(), self._shard_rows))
        self._writer = self._sink = None

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        offset = 0
        while offset < batch.num_rows:
            if self._writer is None:
                self._open()
            assert self._writer is not None and self._sink is not None
            take = min(batch.num_rows - offset, self.max_rows - self._shard_rows, ROW_GROUP_SIZE)
            part = batch.slice(offset, take)
            self._writer.write(part, row_group_size=ROW_GROUP_SIZE)
            self._shard_rows += take
            self.rows += take
            self.nbytes += part.nbytes
            offset += take
            if self._shard_rows >= self.max_rows or self._sink.tell() >= self.max_bytes:
                self._close_shard()

    def close(self) -> list[str]:
        """Finish the last shard and give every shard its content-addressed name; paths relative to the release."""
        self._close_shard()
        names: list[str] = []
        total = len(self._done)
        for index, (tmp, sha, _) in enumerate(self._done):
            stem = self.split if total == 1 else f"{self.split}-{index:05d}-of-{total:05d}"
            name = f"{stem}-{sha[:8]}.parquet"
            tmp.rename(self.folder / name)
            names.append(f"data/{self.config}/{name}")
        return names

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._sink is not None:
            self._sink.close()
