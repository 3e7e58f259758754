"""Read a labeled dev set's images: a folder per class or a manifest CSV, one record per image.

A dataset is a folder per class (`root/<class>/<image>`, labels from the folder names) or a
manifest CSV (`image,label[,example_id]`, paths relative to the manifest's folder). Opening one
checks every entry up front (paths stay inside the root, files exist, labels and ids are sound)
so problems show before a model runs; after that, images stream from disk: iterating yields
lightweight `ImageRecord`s and nothing is held in memory, however large the dev set is.

A manifest is read like every other file input, through `labeltool.tables` (its `Table` in
chunks, its `Problems` for the earliest problem and the rows like it), and its images are
reached like every other image, through `labeltool.storage` (`safe_image_path`, then one
check of the distinct images).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from labeltool.errors import ImageUnavailable, InvalidInput, UnsafePath
from labeltool.importing import natural_order  # the importer's class order
from labeltool.limits import shown
from labeltool.storage import images_root, safe_image_path
from labeltool.tables import Problems, Table

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
#: Rows a manifest is read in at a time: its cells never all sit in memory at once.
MANIFEST_CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset: its id, path relative to the dataset's root, and label."""

    example_id: str
    image: str
    label: str
    #: The manifest's spreadsheet row (header = row 1); None for a folder dataset.
    row: int | None = None


class ImageFolder:
    """A folder per class: `root/<class>/<image>`; example ids are paths without extension.

    Class names are the sorted folder names (the order torchvision's ImageFolder uses) unless
    given, e.g. by the model; then every folder must be one of them.
    """

    def __init__(self, root: str | os.PathLike[str], *, class_names: Sequence[str] | None = None):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise InvalidInput("is not a folder", file=str(root))
        folders = sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        if class_names:
            self.class_names = [str(c) for c in class_names]
            unknown = [f for f in folders if f not in set(self.class_names)]
            if unknown:
                raise InvalidInput(
                    f"folder '{unknown[0]}' is not one of the classes "
                    f"({', '.join(self.class_names)})",
                    file=str(self.root / unknown[0]),
                )
        else:
            self.class_names = folders
        self.folders = folders
        seen: set[str] = set()
        count = 0
        for record in self:
            if record.example_id in seen:
                raise InvalidInput(
                    f"two images share the example id '{record.example_id}' "
                    "(same name, different extension)",
                    file=str(self.root / record.image),
                )
            seen.add(record.example_id)
            count += 1
        if not count:
            raise InvalidInput(
                "holds no images in class folders (expected <folder>/<class>/<image>)",
                file=str(root),
            )
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[ImageRecord]:
        # os.path on plain strings: several times cheaper than pathlib in a per-image loop.
        root = str(self.root)
        images = images_root(root)
        for label in self.folders:
            for directory, subfolders, files in os.walk(os.path.join(root, label)):
                subfolders.sort()
                for name in sorted(files):
                    if name.startswith(".") or (
                        os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES
                    ):
                        continue
                    full = os.path.join(directory, name)
                    image = os.path.relpath(full, root).replace(os.sep, "/")
                    try:
                        images.local_path(image)  # refuses a link leading out of the root
                    except ImageUnavailable as exc:
                        raise UnsafePath(str(exc), file=full) from None
                    yield ImageRecord(posixpath.splitext(image)[0], image, label)

    def problem(self, record: ImageRecord, message: str) -> InvalidInput:
        """An InvalidInput about `record`, naming its image file."""
        return InvalidInput(message, file=str(self.root / record.image))


class Manifest:
    """A CSV with columns `image,label` and optional `example_id`, read as it is used.

    Image paths are relative to the manifest's folder and may not leave it. Every row is
    checked when the manifest is opened (paths, files present, labels known), so problems
    show before the model runs: the earliest is raised, naming the row and column, with how
    many more rows have the same problem. Each distinct image is looked at once.
    """

    REQUIRED = ("image", "label")

    def __init__(self, path: str | os.PathLike[str], *, class_names: Sequence[str] | None = None):
        self.path = Path(path)
        self.file = self.path.name
        self.root = self.path.resolve().parent
        known = [str(c) for c in class_names] if class_names else None
        count, labels = self._check(known)
        if not count:
            raise InvalidInput("has a header but no rows", file=self.file)
        self.class_names = known or sorted(labels, key=natural_order)
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[ImageRecord]:
        table = self._table()
        has_ids = "example_id" in table.columns
        for frame in table.chunks():
            images = frame["image"].str.strip()
            safe = {raw: safe_image_path(raw) for raw in images.unique().tolist()}
            labels = frame["label"].str.strip().tolist()
            ids = frame["example_id"].str.strip().tolist() if has_ids else None
            rows = (frame.index + 2).tolist()
            for position, (raw, label, row) in enumerate(
                zip(images.tolist(), labels, rows, strict=True)
            ):
                image = safe[raw]
                example_id = ids[position] if ids is not None else posixpath.splitext(image)[0]
                yield ImageRecord(example_id, image, label, row)

    def problem(self, record: ImageRecord, message: str) -> InvalidInput:
        """An InvalidInput about `record`, naming the manifest, its row and the image column."""
        return InvalidInput(message, file=self.file, row=record.row, column="image")

    def _table(self) -> Table:
        """The manifest as a `Table`, its header holding the required columns."""
        table = Table(self.path, chunk_rows=MANIFEST_CHUNK_ROWS)
        for column in self.REQUIRED:
            if column not in table.columns:
                raise InvalidInput(
                    "required column is missing (the header has: "
                    f"{', '.join(table.columns) or 'nothing'})",
                    file=self.file,
                    row=1,
                    column=column,
                )
        return table

    def _check(self, known: list[str] | None) -> tuple[int, set[str]]:
        """Check every row, then each distinct image once; raise the earliest problem.

        Returns the row count and the labels seen.
        """
        table = self._table()
        problems = Problems(self.file)
        count, labels, ids = 0, set(), set()
        #: safe image path -> [its first row, the rows naming it].
        image_rows: dict[str, list[int]] = {}
        for frame in table.chunks():
            count += len(frame)
            rows = frame.index.to_numpy() + 2
            self._check_images(frame["image"].str.strip(), rows, problems, image_rows)
            label = frame["label"].str.strip()
            values = label.to_numpy()
            problems.add_mask(
                values == "", rows, column="label", check="empty", message=lambda _i: "is empty"
            )
            if known is not None:
                problems.add_mask(
                    ~label.isin(known).to_numpy() & (values != ""),
                    rows,
                    column="label",
                    check="unknown",
                    message=lambda i, v=values: (
                        f"unknown label {shown(v[i])} (classes: {', '.join(known)})"
                    ),
                )
            labels.update(label.unique().tolist())
            if "example_id" in table.columns:
                self._check_ids(frame["example_id"].str.strip(), rows, problems, ids)
        self._check_files(problems, image_rows)
        problems.raise_first()
        return count, labels - {""}

    @staticmethod
    def _check_images(
        images: pd.Series,
        rows: np.ndarray,
        problems: Problems,
        image_rows: dict[str, list[int]],
    ) -> None:
        """Note the empty and unsafe image paths; count the rows naming each safe one."""
        values = images.to_numpy()
        problems.add_mask(
            values == "", rows, column="image", check="empty", message=lambda _i: "is empty"
        )
        safe: dict[str, str | None] = {}
        reasons: dict[str, str] = {}
        for raw in images.unique().tolist():
            if raw == "":
                continue
            try:
                safe[raw] = safe_image_path(raw)
            except ValueError as exc:
                safe[raw], reasons[raw] = None, str(exc)
        problems.add_mask(
            images.isin(list(reasons)).to_numpy(),
            rows,
            column="image",
            check="unsafe",
            error=UnsafePath,
            message=lambda i: f"image path {reasons[values[i]]}",
        )
        present = images.map(safe).dropna()  # empty and refused cells dropped
        counts = present.value_counts(sort=False).to_dict()
        firsts = present.drop_duplicates()
        for image, index in zip(firsts.tolist(), firsts.index.tolist(), strict=True):
            # The index numbers the file's records: spreadsheet row = index + 2.
            entry = image_rows.setdefault(image, [int(index) + 2, 0])
            entry[1] += int(counts[image])

    def _check_files(self, problems: Problems, image_rows: dict[str, list[int]]) -> None:
        """Look at each distinct image once (missing, unreadable name, a link leading out of
        the manifest's folder), noted at the first row naming it, counting every such row."""
        found = images_root(self.root).check(list(image_rows), depth="exists")
        for image, problem in found.items():
            first, rows = image_rows[image]
            if problem.kind == "outside":
                problems.add(
                    f"image '{image}' is a link that leads out of '{self.root}'",
                    row=first,
                    column="image",
                    check="image outside",
                    error=UnsafePath,
                    count=rows,
                )
            elif problem.kind == "missing":
                problems.add(
                    f"image file not found: '{problem.location}' (image paths are relative to "
                    "the manifest's folder)",
                    row=first,
                    column="image",
                    check="image missing",
                    count=rows,
                )
            else:
                problems.add(
                    f"image file cannot be read: {problem.reason}",
                    row=first,
                    column="image",
                    check="image unreadable",
                    count=rows,
                )

    @staticmethod
    def _check_ids(ids: pd.Series, rows: np.ndarray, problems: Problems, seen: set[str]) -> None:
        """Note empty example ids and ids already given (in an earlier row or chunk)."""
        values = ids.to_numpy()
        problems.add_mask(
            values == "", rows, column="example_id", check="empty", message=lambda _i: "is empty"
        )
        repeated = (ids.duplicated().to_numpy() | ids.isin(seen).to_numpy()) & (values != "")
        problems.add_mask(
            repeated,
            rows,
            column="example_id",
            check="repeated",
            message=lambda i: f"example_id {shown(values[i])} appears twice",
        )
        seen.update(ids.unique().tolist())


def open_dataset(
    path: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
    manifest: bool | None = None,
) -> ImageFolder | Manifest:
    """A folder per class when `path` is a folder, a manifest when it is a .csv file.

    `manifest=True` reads a file of any name as a manifest.
    """
    path = Path(path)
    if path.is_dir() and not manifest:
        return ImageFolder(path, class_names=class_names)
    if path.is_file() and (manifest or path.suffix.lower() == ".csv"):
        return Manifest(path, class_names=class_names)
    if not path.exists():
        raise InvalidInput("no such file or folder", file=str(path))
    raise InvalidInput(
        "give a folder with a subfolder per class, or a manifest .csv (image,label); "
        "use --manifest for a manifest with another extension",
        file=str(path),
    )
