"""Read a labeled dev set's images: a folder per class or a manifest CSV, one record per image.

A dataset is a folder per class (`root/<class>/<image>`, labels from the folder names) or a
manifest CSV (`image,label[,example_id]`, paths relative to the manifest's folder). Opening one
checks every entry up front (paths stay inside the root, files exist, labels and ids are sound)
so problems show before a model runs; after that, images stream from disk: iterating yields
lightweight `ImageRecord`s and nothing is held in memory, however large the dev set is.
"""

from __future__ import annotations

import csv
import os
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from labeltool.errors import InvalidInput, UnsafePath
from labeltool.images import unusable_name
from labeltool.importing import natural_order  # the importer's class order
from labeltool.storage import safe_image_path

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


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
        for label in self.folders:
            for directory, subfolders, files in os.walk(os.path.join(root, label)):
                subfolders.sort()
                for name in sorted(files):
                    if name.startswith(".") or (
                        os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES
                    ):
                        continue
                    full = os.path.join(directory, name)
                    if not _inside(root, full):
                        raise UnsafePath(f"is a link that leads outside '{root}'", file=full)
                    image = os.path.relpath(full, root).replace(os.sep, "/")
                    yield ImageRecord(posixpath.splitext(image)[0], image, label)

    def problem(self, record: ImageRecord, message: str) -> InvalidInput:
        """An InvalidInput about `record`, naming its image file."""
        return InvalidInput(message, file=str(self.root / record.image))


class Manifest:
    """A CSV with columns `image,label` and optional `example_id`, read as it is used.

    Image paths are relative to the manifest's folder and may not leave it. Every row is
    checked when the manifest is opened (paths, files present, labels known), so problems
    show before the model runs; each names the row and column.
    """

    REQUIRED = ("image", "label")

    def __init__(self, path: str | os.PathLike[str], *, class_names: Sequence[str] | None = None):
        self.path = Path(path)
        self.file = self.path.name
        if not self.path.is_file():
            raise InvalidInput("file not found", file=str(path))
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
        for row, cells in self._rows():
            image = safe_image_path(cells.get("image", ""))
            example_id = cells.get("example_id", "").strip() or posixpath.splitext(image)[0]
            yield ImageRecord(example_id, image, cells.get("label", "").strip(), row)

    def problem(self, record: ImageRecord, message: str) -> InvalidInput:
        """An InvalidInput about `record`, naming the manifest, its row and the image column."""
        return InvalidInput(message, file=self.file, row=record.row, column="image")

    def _rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        try:
            with self.path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle)
                header = [h.strip() for h in next(reader, [])]
                if not header:
                    raise InvalidInput("the file is empty", file=self.file)
                for column in self.REQUIRED:
                    if column not in header:
                        raise InvalidInput(
                            f"required column is missing (the header has: {', '.join(header)})",
                            file=self.file,
                            row=1,
                            column=column,
                        )
                for row, values in enumerate(reader, start=2):
                    if values:
                        yield row, dict(zip(header, values, strict=False))
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"not UTF-8 text ({exc.reason})", file=self.file) from None
        except csv.Error as exc:
            raise InvalidInput(f"malformed CSV: {exc}", file=self.file) from None

    def _check(self, known: list[str] | None) -> tuple[int, set[str]]:
        """Check every row and raise the first problem, counting the rows with the same one.

        Returns the row count and the labels seen.
        """
        first: tuple[int, str, str, type[InvalidInput]] | None = None
        same = 0
        count, labels, ids = 0, set(), set()

        def note(row: int, column: str, message: str, kind=InvalidInput) -> None:
            nonlocal first, same
            if first is None:
                first = (row, column, message, kind)
            elif first[1] == column and first[3] is kind:
                same += 1

        for row, cells in self._rows():
            count += 1
            raw_image, label = cells.get("image", "").strip(), cells.get("label", "").strip()
            try:
                image = safe_image_path(raw_image)
            except ValueError as exc:
                note(row, "image", f"image path {exc}", UnsafePath)
                image = None
            if image is not None:
                candidate = os.path.join(self.root, image)
                if reason := unusable_name(candidate):
                    note(row, "image", f"image file cannot be read: {reason}")
                elif not os.path.isfile(candidate):
                    note(row, "image", f"image file not found: '{candidate}'")
                elif not _inside(str(self.root), candidate):
                    message = f"image '{image}' is a link that leads out of '{self.root}'"
                    note(row, "image", message, UnsafePath)
            if not label:
                note(row, "label", "is empty")
            elif known is not None and label not in known:
                note(row, "label", f"unknown label '{label}' (classes: {', '.join(known)})")
            labels.add(label)
            if "example_id" in cells:
                example_id = cells["example_id"].strip()
                if not example_id:
                    note(row, "example_id", "is empty")
                elif example_id in ids:
                    note(row, "example_id", f"example_id '{example_id}' appears twice")
                ids.add(example_id)
        if first is not None:
            row, column, message, kind = first
            raise kind(message, file=self.file, row=row, column=column, more=same)
        return count, labels - {""}


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


# --- private helpers -------------------------------------------------------------------


def _inside(root: str, path: str) -> bool:
    """Whether `path`, links followed, lies inside the resolved folder `root`."""
    return os.path.realpath(path).startswith(root.rstrip(os.sep) + os.sep)
