"""The `PackageEvents` table: an append-only history per package.

RowKeys sort chronologically (milliseconds since the epoch, zero-padded) with a random suffix, so
two writers never collide and a partition query returns the history in order.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableClient


class PackageEventLog:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def append(self, package_ref: str, kind: str, **data: Any) -> None:
        now = datetime.now(UTC)
        row_key = f"{int(now.timestamp() * 1000):015d}-{uuid.uuid4().hex[:8]}"
        self._table.create_entity({
            "PartitionKey": package_ref,
            "RowKey": row_key,
            "Kind": kind,
            "At": now,
            "DataJson": json.dumps(data, separators=(",", ":"), default=str),
        })

    def history(self, package_ref: str) -> Iterator[dict[str, Any]]:
        for entity in self._table.query_entities("PartitionKey eq @ref", parameters={"ref": package_ref}):
            yield {"kind": entity["Kind"], "at": entity["At"], **json.loads(entity.get("DataJson") or "{}")}
