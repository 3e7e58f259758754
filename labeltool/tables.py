"""The one reader of the tables users give us (CSV or Parquet), and the one problem collector.

Every file input (predictions, `import-tags`, categories, manifests) reads through `Table`
and reports through `Problems`, so a rule about cells, row numbers or "first problem and N
more" is written once.

- `Table(path)` checks the header (empty, unnamed, repeated or oversized column names), then
  yields the rows in chunks of text cells ("" for empty): CSV with pandas' C parser, Parquet
  with pyarrow's batch reader, so a file of any length is read in bounded memory. Each
  chunk's index is the row's record number from 0, so `index + 2` is the spreadsheet row
  (header = row 1) even when blank lines were dropped. A cell over `MAX_CELL` characters, a
  NUL, a row with fewer or more fields than the header, text that is not UTF-8 or unbalanced
  quotes raise `InvalidInput` naming the file, row and column.
- `Problems(file)` collects what the checks find across all chunks: the earliest row is
  reported, with how many more rows have the same problem in the same column.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from labeltool.errors import InvalidInput
from labeltool.limits import MAX_CELL, MAX_HEADER_CELL, control_character, shown

#: Rows per chunk: large enough that pandas and the database driver work in bulk, small
#: enough that a chunk's cells stay well under 100 MB.
CHUNK_ROWS = 100_000

PARQUET_SUFFIXES = (".parquet", ".pq")

# The csv module (header, field counts) refuses fields over 128 KB with an error that names
# no column; let it read them, so the cell checks below can say where they are.
csv.field_size_limit(max(csv.field_size_limit(), 64 * MAX_CELL))


# --- problems --------------------------------------------------------------------------


@dataclass
class _Problem:
    row: int | None
    message: str
    column: str | None
    error: type[InvalidInput]
    count: int = 1


class Problems:
    """What is wrong with a file, gathered across its chunks; `raise_first()` reports it.

    Each problem has a `check` (what rule it breaks); problems of the same check in the same
    column are one entry: its earliest row and how many rows share it. The entry with the
    earliest row is raised, so the message is the same however the file was chunked.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self._found: dict[tuple[str, str | None], _Problem] = {}

    def __bool__(self) -> bool:
        return bool(self._found)

    def add(
        self,
        message: str,
        *,
        row: int | None,
        column: str | None = None,
        check: str | None = None,
        error: type[InvalidInput] = InvalidInput,
        count: int = 1,
    ) -> None:
        """Note `count` rows breaking `check` in `column`, the earliest at `row` (`message`)."""
        key = (check or message, column)
        known = self._found.get(key)
        if known is None:
            self._found[key] = _Problem(row, message, column, error, count)
            return
        known.count += count
        if row is not None and (known.row is None or row < known.row):
            known.row, known.message, known.error = row, message, error

    def add_mask(
        self,
        mask: pd.Series | np.ndarray,
        rows: pd.Index | np.ndarray,
        *,
        column: str | None,
        check: str,
        message: Callable[[int], str],
        error: type[InvalidInput] = InvalidInput,
    ) -> bool:
        """Note the rows where `mask` is true; `message(position)` words the first of them
        (`position` counts from 0 in the chunk). Returns whether any row was noted."""
        values = np.asarray(mask, dtype=bool)
        if not values.any():
            return False
        positions = np.flatnonzero(values)
        first = int(positions[0])
        self.add(
            message(first),
            row=int(np.asarray(rows)[first]),
            column=column,
            check=check,
            error=error,
            count=len(positions),
        )
        return True

    def first(self) -> InvalidInput | None:
        """The problem to report: the one with the earliest row (a file-wide one first)."""
        if not self._found:
            return None
        problem = min(self._found.values(), key=lambda p: (p.row is not None, p.row or 0))
        return problem.error(
            problem.message,
            file=self.file,
            row=problem.row,
            column=problem.column,
            more=problem.count - 1,
        )

    def raise_first(self) -> None:
        """Raise the earliest problem, if there is one."""
        if (error := self.first()) is not None:
            raise error


# --- reading ---------------------------------------------------------------------------


class Table:
    """A CSV or Parquet file read as text cells, in chunks (see the module's docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        chunk_rows: int = CHUNK_ROWS,
        problems: Problems | None = None,
    ) -> None:
        """`problems`: where the cell checks report (a reader's own collector, so that cell
        and row problems compete for the earliest row); without one, `chunks()` raises the
        earliest cell problem once the file is read."""
        self.path = Path(path)
        self.file = self.path.name
        self.chunk_rows = max(1, int(chunk_rows))
        if not self.path.is_file():
            raise InvalidInput("file not found", file=str(self.path))
        self.problems = problems if problems is not None else Problems(self.file)
        self._own_problems = problems is None
        self.size = self.path.stat().st_size
        self.parquet = self.path.suffix.lower() in PARQUET_SUFFIXES
        self.bytes_read = 0
        self._rows_seen = 0
        self._short_records: dict[int, int] | None = None
        #: The header's names, in order, with empty trailing columns dropped.
        self.columns: list[str] = []
        self._keep: list[int] = []
        self._header()

    # The header -----------------------------------------------------------------------

    def _header(self) -> None:
        raw = self._parquet_file().schema_arrow.names if self.parquet else self._csv_header()
        names = [str(n) for n in raw]
        for position, name in enumerate(names, start=1):
            if len(name) > MAX_HEADER_CELL:
                raise InvalidInput(
                    f"the header cell of column {column_letters(position)} has {len(name):,} "
                    f"characters; a column name has at most {MAX_HEADER_CELL:,}",
                    file=self.file,
                    row=1,
                    column=shown(name)[1:-1],
                )
            if bad := control_character(name):
                raise InvalidInput(
                    f"a column name cannot hold the control character {bad}",
                    file=self.file,
                    row=1,
                    column=shown(name)[1:-1],
                )
        stripped = [n.strip() for n in names]
        self._all_columns = stripped
        self._keep = [i for i, n in enumerate(stripped) if n]
        self.columns = [stripped[i] for i in self._keep]
        if repeated := sorted({c for c in self.columns if self.columns.count(c) > 1}):
            raise InvalidInput(
                "appears more than once in the header",
                file=self.file,
                row=1,
                column=shown(repeated[0])[1:-1],
            )
        if not stripped:
            raise InvalidInput("the file is empty", file=self.file)

    def _not_utf8(self, exc: UnicodeDecodeError) -> InvalidInput:
        """The refusal of a file that is not UTF-8, naming the row and column of its first
        bad byte."""
        row, column = _where_not_utf8(self.path)
        return InvalidInput(
            f"not UTF-8 text ({exc.reason}); save the file as UTF-8",
            file=self.file,
            row=row,
            column=column,
        )

    def _csv_header(self) -> list[str]:
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as handle:
                header = next(csv.reader(handle), None)
        except UnicodeDecodeError as exc:
            raise self._not_utf8(exc) from exc
        except csv.Error as exc:
            raise InvalidInput(f"malformed CSV: {exc}", file=self.file, row=1) from None
        if not header:
            raise InvalidInput("the file is empty", file=self.file)
        return header

    def _parquet_file(self):
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises its own ArrowInvalid, OSError, ...
            raise InvalidInput(f"cannot read the file: {exc}", file=self.file) from exc

    # The rows -------------------------------------------------------------------------

    def estimated_rows(self) -> int:
        """How many rows the file has: exact for Parquet, else from the bytes read so far."""
        if self.parquet:
            return self._parquet_file().metadata.num_rows
        if not self._rows_seen or not self.bytes_read:
            return max(1, self.size // 64)
        if self.bytes_read >= self.size:
            return self._rows_seen
        return max(self._rows_seen, round(self._rows_seen * self.size / self.bytes_read))

    def chunks(self) -> Iterator[pd.DataFrame]:
        """The rows in chunks of at most `chunk_rows`: text cells, blank rows dropped, the
        index numbering the file's records from 0 (spreadsheet row = index + 2)."""
        reader = self._parquet_chunks() if self.parquet else self._csv_chunks()
        for frame in reader:
            if len(self._keep) != frame.shape[1]:
                self._refuse_unnamed_values(frame)
                frame = frame.iloc[:, self._keep]
            frame.columns = self.columns
            if len(frame):
                yield frame
        if self._own_problems:
            self.problems.raise_first()

    def _refuse_unnamed_values(self, frame: pd.DataFrame) -> None:
        """A column with an empty header is dropped when it is empty too (a spreadsheet's
        trailing comma); one with values is refused, since nobody wrote down its meaning."""
        kept = set(self._keep)
        for position in range(frame.shape[1]):
            if position in kept:
                continue
            filled = (frame.iloc[:, position].str.strip() != "").to_numpy()
            if filled.any():
                raise InvalidInput(
                    f"column {position + 1} has values but no name in the header",
                    file=self.file,
                    row=1,
                )

    def read(self) -> pd.DataFrame:
        """Every row at once (for the small files: categories, tags, manifests)."""
        frames = list(self.chunks())
        if not frames:
            return pd.DataFrame({c: pd.Series([], dtype=object) for c in self.columns})
        return frames[0] if len(frames) == 1 else pd.concat(frames)

    def _csv_chunks(self) -> Iterator[pd.DataFrame]:
        handle = _CountingReader(self.path)
        try:
            reader = pd.read_csv(
                handle,
                dtype=str,
                keep_default_na=False,
                na_values=[],
                encoding="utf-8-sig",
                # Blank lines are kept while reading so the index counts the file's records;
                # they are dropped below.
                skip_blank_lines=False,
                chunksize=self.chunk_rows,
                header=0,
                # Positional names: the header's own may repeat (empty trailing columns).
                names=[f"_{i}" for i in range(len(self._all_columns))],
            )
            first = True
            for frame in reader:
                self.bytes_read = handle.consumed
                if first and not isinstance(frame.index, pd.RangeIndex):
                    raise InvalidInput(
                        f"malformed CSV: more fields than the {len(self._all_columns)} in the "
                        "header",
                        file=self.file,
                        row=2,
                    )
                first = False
                self._rows_seen = int(frame.index[-1]) + 1 if len(frame) else self._rows_seen
                frame = frame.fillna("")
                empty = frame.iloc[:, -1].to_numpy() == ""
                blank = empty & (frame == "").all(axis=1).to_numpy() if empty.any() else empty
                if (empty & ~blank).any():
                    self._refuse_short_rows(frame, empty & ~blank)
                self._check_cells(frame)
                yield frame[~blank] if blank.any() else frame
            self.bytes_read = self.size
        except UnicodeDecodeError as exc:
            raise self._not_utf8(exc) from exc
        except pd.errors.EmptyDataError as exc:
            raise InvalidInput("the file is empty", file=self.file) from exc
        except pd.errors.ParserError as exc:
            reason, row = _parser_error(str(exc))
            raise InvalidInput(f"malformed CSV: {reason}", file=self.file, row=row) from exc
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read the file: {exc}", file=self.file) from exc
        finally:
            handle.close()

    def _refuse_short_rows(self, frame: pd.DataFrame, candidates: np.ndarray) -> None:
        """Pandas gives the missing fields of a short row "", as it does an empty last cell;
        a row cut short (a file truncated mid-row) must not import with those cells empty.
        Only rows whose last cell is empty (`candidates`) can be short: the file's field
        counts are read once, and only if there is such a row."""
        if self._short_records is None:
            self._short_records = self._find_short_records()
        for record in frame.index[candidates]:
            if int(record) in self._short_records:
                fields = self._short_records[int(record)]
                header = self._all_columns
                name = header[fields] or column_letters(fields + 1)
                raise InvalidInput(
                    f"is empty: the row stops after {fields} of the header's {len(header)} "
                    "fields (was the file cut short?)",
                    file=self.file,
                    row=int(record) + 2,
                    column=shown(name)[1:-1],
                )

    def _find_short_records(self) -> dict[int, int]:
        """{record number: its field count} of the non-blank records with too few fields."""
        short: dict[int, int] = {}
        width = len(self._all_columns)
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as handle:
                reader = csv.reader(handle)
                next(reader, None)
                for record, fields in enumerate(reader):
                    if 0 < len(fields) < width:
                        short[record] = len(fields)
        except csv.Error as exc:
            raise InvalidInput(f"malformed CSV: {exc}", file=self.file) from None
        return short

    def _parquet_chunks(self) -> Iterator[pd.DataFrame]:
        source = self._parquet_file()
        start = 0
        try:
            for batch in source.iter_batches(batch_size=self.chunk_rows):
                frame = batch.to_pandas()
                frame.index = pd.RangeIndex(start, start + len(frame))
                start += len(frame)
                self._rows_seen = start
                self.bytes_read = round(self.size * start / max(1, source.metadata.num_rows))
                frame = frame.astype(object).where(frame.notna(), "")
                frame = frame.map(_cell_text)
                self._check_cells(frame)
                blank = (frame == "").all(axis=1)
                yield frame[~blank] if blank.any() else frame
        except InvalidInput:
            raise
        except Exception as exc:
            raise InvalidInput(f"cannot read the file: {exc}", file=self.file) from exc

    def _check_cells(self, frame: pd.DataFrame) -> None:
        """Note each cell over MAX_CELL characters or holding a NUL (PostgreSQL cannot store
        it) in `problems`, before anything else reads the cells."""
        rows = frame.index.to_numpy() + 2
        for position in range(frame.shape[1]):
            cells = frame.iloc[:, position]
            name = shown(self._all_columns[position])[1:-1]
            lengths = cells.str.len().to_numpy()
            self.problems.add_mask(
                lengths > MAX_CELL,
                rows,
                column=name,
                check="cell size",
                message=lambda _i: f"a cell has at most {MAX_CELL:,} characters",
            )
            if (lengths > 0).any():
                self.problems.add_mask(
                    cells.str.contains("\x00", regex=False).to_numpy(dtype=bool),
                    rows,
                    column=name,
                    check="NUL",
                    message=lambda _i: "a cell cannot hold a NUL character",
                )


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A whole (small) CSV or Parquet file as text cells; see `Table`."""
    return Table(path).read()


def column_letters(position: int) -> str:
    """A spreadsheet's name for the 1-based column `position`: 1 -> A, 27 -> AA."""
    letters = ""
    while position:
        position, remainder = divmod(position - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


class _CountingReader(io.RawIOBase):
    """A binary file that counts the bytes pandas has taken from it (for the progress bar's
    estimate of the rows to come)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._file.readinto(buffer)
        self.consumed += count or 0
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def _cell_text(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return repr(value)
    return str(value)


def _where_not_utf8(path: Path) -> tuple[int | None, str | None]:
    """The spreadsheet row and column of the first byte that is not UTF-8."""
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        data.decode("utf-8")
        return None, None
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8")
    try:
        # A marker where the bad byte was: the record and field holding it are its place.
        records = list(csv.reader(io.StringIO(before + "\ufffd")))
    except csv.Error:
        return None, None
    row, index = len(records), len(records[-1]) - 1
    header = records[0] if row > 1 else []
    return row, (header[index].strip() if index < len(header) else None)


def _parser_error(message: str) -> tuple[str, int | None]:
    """Pandas' tokenizer message in our words, and the spreadsheet row it is about."""
    if found := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message):
        expected, line, saw = (int(n) for n in found.groups())
        return f"expected {expected} fields (as in the header), found {saw}", line
    if found := re.search(r"EOF inside string starting at row (\d+)", message):
        # Pandas counts from 0 here; the header is row 1.
        return "a quoted field is never closed (unbalanced quotes)", int(found.group(1)) + 1
    return message.strip(), None
