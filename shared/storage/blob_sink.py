"""A write-only stream into one block blob, for documents too large to hold in memory."""

from __future__ import annotations

import base64
import contextvars
import hashlib
from collections import deque
from concurrent.futures import Executor, Future
from typing import Any

from azure.storage.blob import BlobBlock, BlobClient, ContentSettings

# Blocks of 8 MiB, two of them staged at once while the next one fills: half the requests of 4 MiB
# blocks, and one request's round trip overlaps the next one's upload. A sink holds at most three
# blocks in memory.
BLOCK_BYTES = 8 * 1024 * 1024
STAGING_IN_FLIGHT = 2


class BlobSink:
    """A write-only stream into one block blob: blocks are staged as they fill, the commit sets the metadata.

    Up to STAGING_IN_FLIGHT blocks are staged in the background while the next one fills; a failed
    stage is raised by a later write or by the commit. Uncommitted blocks of an interrupted earlier
    run (or of this one) are dropped by the commit, so a retry leaves exactly one copy.

    Written chunks are kept as they come and joined once per block (one copy of each byte; a chunk
    that is a whole block is staged as it is). With `hashed_by_writer`, the writer (a client download
    hashes what it reads) passes the sha256 to `commit` and the bytes are not hashed twice.
    """

    def __init__(self, blob: BlobClient, staging: Executor, *, hashed_by_writer: bool = False) -> None:
        self._blob = blob
        self._staging = staging  # owned by the caller (an archive run), which shuts it down
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._block_ids: list[str] = []
        self._in_flight: deque[Future[Any]] = deque()
        self._sha256 = None if hashed_by_writer else hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        chunk = data if isinstance(data, bytes) else bytes(data)  # a caller may reuse its buffer
        if self._sha256 is not None:
            self._sha256.update(chunk)
        self.size += len(chunk)
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        while self._buffered >= BLOCK_BYTES:
            self._stage(self._take(BLOCK_BYTES))
        return len(chunk)

    def _take(self, count: int) -> bytes:
        """The first `count` buffered bytes as one block; the rest stays buffered."""
        joined = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = [joined[count:]] if len(joined) > count else []
        self._buffered = len(joined) - count if len(joined) > count else 0
        return joined[:count] if len(joined) > count else joined

    def _stage(self, chunk: bytes) -> None:
        while len(self._in_flight) >= STAGING_IN_FLIGHT:
            self._in_flight.popleft().result()
        block_id = base64.b64encode(f"{len(self._block_ids):08d}".encode()).decode()
        # In the caller's context, so the staging call's span joins the package's trace.
        staged = self._staging.submit(contextvars.copy_context().run, self._blob.stage_block, block_id, chunk)
        self._in_flight.append(staged)
        self._block_ids.append(block_id)

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            raise RuntimeError("this sink's writer hashes the bytes: its sha256 goes to commit()")
        return self._sha256.hexdigest()

    def commit(self, content_type: str, metadata: dict[str, str], sha256: str | None = None) -> str:
        """Write the remaining bytes and make the blob visible. Returns its sha256 (`sha256`, when given)."""
        digest = sha256 if sha256 is not None else self.sha256
        if self._buffered or not self._block_ids:
            self._stage(self._take(self._buffered))
        while self._in_flight:
            self._in_flight.popleft().result()
        blocks = [BlobBlock(block_id) for block_id in self._block_ids]
        self._blob.commit_block_list(blocks, content_settings=ContentSettings(content_type=content_type),
                                     metadata={**metadata, "sha256": digest})
        return digest
