"""Athena's result files and the pages of GetQueryResults.

A query's result is written as Athena writes it: ``<OutputLocation>/<qid>.csv`` (a header row, then one
line per row; every value double-quoted with ``"`` doubled, NULL as an empty unquoted field, ``\\n``
line ends) and ``<qid>.csv.metadata``. Athena's metadata file is a binary protobuf of the column info;
here it is the UTF-8 JSON ``{"ColumnInfo": [...], "RowCount": n, "QueryExecutionId": qid}``
(documented as a local difference: nothing reads it but the local stack and humans). Both are written
atomically (unique temp file + rename), the CSV built with vectorized Arrow kernels.

GetQueryResults pages are read back from the CSV (the one source of truth, as on AWS), parsed once by
Arrow (quoted empty -> ``""``, unquoted empty -> NULL) and kept in a small cache while a client pages.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from smspark_assets.local.athena_storage import write_atomically

MAX_PAGE = 1000
_CACHE_SIZE = 4


def csv_bytes(names: list[str], table: pa.Table) -> bytes:
    """The CSV Athena writes for ``table`` (text columns) under header ``names``."""
    header = ",".join(_quote(n) for n in names) + "\n"
    if table.num_rows == 0:
        return header.encode()

    def text(value: str) -> pa.Scalar:
        return pa.scalar(value, pa.large_string())

    cells = []
    for column in table.columns:
        escaped = pc.replace_substring(pc.cast(column, pa.large_string()), '"', '""')
        quoted = pc.binary_join_element_wise(text('"'), escaped, text('"'), text(""))
        cells.append(pc.fill_null(quoted, text("")))
    lines = pc.binary_join_element_wise(*cells, text(",")) if len(cells) > 1 else cells[0]
    lines = pc.binary_join_element_wise(lines, text(""), text("\n"))  # append the line end
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    # The concatenation of every line is the array's data buffer between its first and last offsets.
    offsets = lines.buffers()[1]
    first, last = (
        int.from_bytes(offsets[i * 8 : (i + 1) * 8], "little", signed=True)
        for i in (lines.offset, lines.offset + len(lines))
    )
    return header.encode() + lines.buffers()[2].to_pybytes()[first:last]


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def write_result(csv_path: Path, names: list[str], table: pa.Table, metadata: dict[str, Any]) -> None:
    """Write ``<qid>.csv`` and ``<qid>.csv.metadata`` atomically (metadata last: its presence means done)."""
    write_atomically(csv_path, csv_bytes(names, table))
    write_atomically(csv_path.with_name(csv_path.name + ".metadata"), json.dumps(metadata).encode())


class ResultPages:
    """GetQueryResults pages over result CSVs, with the last few parsed results cached."""

    def __init__(self) -> None:
        self._cache: OrderedDict[str, pa.Table] = OrderedDict()
        self._lock = threading.Lock()

    def _table(self, qid: str, csv_path: Path, width: int) -> pa.Table:
        with self._lock:
            if qid in self._cache:
                self._cache.move_to_end(qid)
                return self._cache[qid]
        names = [f"c{i}" for i in range(width)]
        table = pacsv.read_csv(
            csv_path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                null_values=[""],
            ),
        )
        with self._lock:
            self._cache[qid] = table
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return table

    def page(
        self, qid: str, csv_path: Path, columns: list[dict[str, Any]], max_results: int, token: str | None
    ) -> dict[str, Any]:
        """One page: the header row counts as the first row of the first page, as on Athena."""
        table = self._table(qid, csv_path, len(columns))
        offset = _decode(token, qid) if token else 0
        rows: list[dict[str, Any]] = []
        if offset == 0:
            rows.append({"Data": [{"VarCharValue": c["Name"]} for c in columns]})
            offset_rows = max_results - 1
            start = 0
        else:
            offset_rows = max_results
            start = offset - 1  # offsets count the header row
        chunk = table.slice(start, offset_rows)
        for record in zip(*(col.to_pylist() for col in chunk.columns)) if chunk.num_columns else ():
            rows.append({"Data": [{} if v is None else {"VarCharValue": v} for v in record]})
        out: dict[str, Any] = {
            "ResultSet": {"Rows": rows, "ResultSetMetadata": {"ColumnInfo": columns}},
            "UpdateCount": 0,
        }
        consumed = (start + chunk.num_rows) + 1  # data rows served so far, plus the header
        if consumed < table.num_rows + 1:
            out["NextToken"] = _encode(qid, consumed)
        return out

    def forget(self, qid: str) -> None:
        with self._lock:
            self._cache.pop(qid, None)


def _encode(qid: str, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"q": qid, "o": offset}).encode()).decode()


def _decode(token: str, qid: str) -> int:
    from smspark_assets.local.api_errors import ApiError

    try:
        doc = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = int(doc["o"])
    except (ValueError, KeyError, TypeError):
        raise ApiError("InvalidRequestException", "The NextToken is not valid") from None
    if doc.get("q") != qid or offset < 1:
        raise ApiError("InvalidRequestException", "The NextToken does not belong to this query execution")
    return offset
