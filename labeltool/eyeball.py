"""Eyeball and blackbox dev sets: look at the errors of one random part of a large dev set.

With a large dev set, reviewers look only at the errors of a random "eyeball" part (e.g. 10%);
the rest, the "blackbox" part, only measures error. If the eyeball error falls much faster
than the blackbox error, the team has overfit the eyeball set and should move fresh examples
over. An example is in the eyeball part when its fixed random `shuffle_key` is among the
lowest `eyeball_fraction` of keys: the split is random, survives re-imports, and raising the
fraction moves fresh examples over without taking any out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Float, Integer, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from labeltool import audit
from labeltool.config import DEFAULT_SPLIT
from labeltool.errors import InvalidInput, UnknownProject
from labeltool.models import Example, Project
from labeltool.report_cache import keep
from labeltool.roles import Role, require
from labeltool.runs import in_run

#: shuffle_key is uniform on [0, 2**63).
_KEY_SPACE = float(2**63)
#: The method's rule of thumb: look at about this many errors.
ERRORS_TO_LOOK_AT = 100


@dataclass(frozen=True)
class EyeballSplit:
    """The two parts of the dev set and their error rates."""

    fraction: float | None
    eyeball_examples: int
    eyeball_errors: int
    blackbox_examples: int
    blackbox_errors: int

    @property
    def eyeball_error(self) -> float:
        return self.eyeball_errors / self.eyeball_examples if self.eyeball_examples else 0.0

    @property
    def blackbox_error(self) -> float:
        return self.blackbox_errors / self.blackbox_examples if self.blackbox_examples else 0.0

    @property
    def p_value(self) -> float | None:
        """Two-sided two-proportion z-test of equal error rates (None without both parts)."""
        n1, n2 = self.eyeball_examples, self.blackbox_examples
        if not n1 or not n2:
            return None
        pooled = (self.eyeball_errors + self.blackbox_errors) / (n1 + n2)
        spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        if spread == 0:
            return 1.0
        z = (self.eyeball_error - self.blackbox_error) / spread
        return math.erfc(abs(z) / math.sqrt(2))

    @property
    def warning(self) -> str | None:
        """The method's warning when the eyeball error is clearly below the blackbox error."""
        p = self.p_value
        if p is None or p >= 0.05 or self.eyeball_error >= self.blackbox_error:
            return None
        gap = (self.blackbox_error - self.eyeball_error) * 100
        return (
            f"The eyeball error ({self.eyeball_error:.1%}) is {gap:.1f} points below the "
            f"blackbox error ({self.blackbox_error:.1%}), more than chance explains "
            f"(p = {p:.3f}): the team may have overfit the eyeball set. Move fresh examples "
            "over by raising the eyeball share."
        )


def in_eyeball(project_id: int) -> ColumnElement[bool]:
    """True for the project's examples in its eyeball part (all of them when it has none).

    The fraction is read from the project inside the query, so every queue query that uses
    this condition follows the project's current setting.
    """
    fraction = select(Project.eyeball_fraction).where(Project.id == project_id).scalar_subquery()
    return or_(
        fraction.is_(None),
        cast(Example.shuffle_key, Float) < fraction * literal(_KEY_SPACE, Float),
    )


def set_eyeball_fraction(
    session: Session, *, project_id: int, fraction: float | None, user: str | None = None
) -> None:
    """Keep `fraction` of the dev set as the eyeball part (None: review the whole dev set).

    `user` acts: once the project has members, only a lead may set it (labeltool.roles).
    """
    project = session.get(Project, project_id)
    if project is None:
        raise UnknownProject(str(project_id))
    require(
        session,
        project_id=project_id,
        user=user,
        needs=Role.LEAD,
        action="setting the eyeball share",
    )
    if fraction is not None and not 0.0 < fraction <= 1.0:
        raise InvalidInput("the eyeball share must be more than 0% and at most 100%")
    old = project.eyeball_fraction
    project.eyeball_fraction = None if fraction in (None, 1.0) else float(fraction)
    audit.setting(
        session,
        project_id=project_id,
        user=user,
        name="eyeball share",
        old=old,
        new=project.eyeball_fraction,
    )


@keep
def eyeball_split(session: Session, *, project_id: int, run_id: int | None = None) -> EyeballSplit:
    """Examples and errors in the eyeball and blackbox parts of the dev set (one query)."""
    fraction = session.scalar(select(Project.eyeball_fraction).where(Project.id == project_id))
    eyeball = in_eyeball(project_id)
    error = cast(Example.is_error, Integer)
    row = session.execute(
        select(
            func.coalesce(func.sum(case((eyeball, 1), else_=0)), 0),
            func.coalesce(func.sum(case((eyeball, error), else_=0)), 0),
            func.count(),
            func.coalesce(func.sum(error), 0),
        ).where(*in_run(project_id, run_id), Example.split == DEFAULT_SPLIT)
    ).one()
    eyeball_examples, eyeball_errors, examples, errors = (int(v) for v in row)
    return EyeballSplit(
        fraction=fraction,
        eyeball_examples=eyeball_examples,
        eyeball_errors=eyeball_errors,
        blackbox_examples=examples - eyeball_examples,
        blackbox_errors=errors - eyeball_errors,
    )


def suggested_fraction(
    *, dev_examples: int, dev_error: float, errors_wanted: int = ERRORS_TO_LOOK_AT
) -> float | None:
    """The eyeball share that holds about `errors_wanted` errors (None if the dev set cannot).

    E.g. ~100 errors at a 5% error rate need ~2,000 eyeball examples.
    """
    if not dev_examples or dev_error <= 0:
        return None
    needed = errors_wanted / dev_error
    return min(1.0, needed / dev_examples)
