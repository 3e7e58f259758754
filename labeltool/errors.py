"""Domain errors. Pages turn them into `st.error`, the CLI into one line on stderr and exit 1."""

from __future__ import annotations


class LabeltoolError(Exception):
    """Base class for every error a user can cause and fix."""


class InvalidInput(LabeltoolError):
    """A file the user gave us is malformed; names the file, row and column when known.

    `row` is the spreadsheet row: the header is row 1, the first data row is row 2.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        more: int = 0,
    ) -> None:
        self.file, self.row, self.column, self.more = file, row, column, more
        self.reason = message
        where = ", ".join(
            part
            for part in (
                file,
                f"row {row}" if row is not None else None,
                f"column '{column}'" if column is not None else None,
            )
            if part
        )
        text = f"{where}: {message}" if where else message
        if more:
            text += f" (and {more} more row{'s' if more != 1 else ''} like it)"
        super().__init__(text)


class UnsafePath(InvalidInput):
    """An image path points outside the project's images root."""


class ImageUnavailable(LabeltoolError):
    """An example's image is missing, unreadable or outside the images root."""


class UnknownProject(LabeltoolError):
    """No project has the given name."""

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        hint = f"; known projects: {', '.join(known)}" if known else "; import predictions first"
        super().__init__(f"no project named '{name}'{hint}")


class UnknownCategory(LabeltoolError):
    """No category has the given name (or id) in this project."""


class UnknownExample(LabeltoolError):
    """No example has the given id in this project."""


class DuplicateCategory(LabeltoolError):
    """A category with this name or shortcut key already exists in the project."""


class ModelLoadError(LabeltoolError):
    """A model file could not be loaded safely (wrong format, unknown architecture)."""


class Forbidden(LabeltoolError):
    """The acting user's role in the project does not allow the action (labeltool.roles); the
    message names the role the action needs and the role the user has."""
