"""Finding projects and their headline numbers (dev examples, misclassified, dev error)."""

from __future__ import annotations

from sqlalchemy import Integer, cast, delete, func, select
from sqlalchemy.orm import Session

from labeltool.config import DEFAULT_SPLIT
from labeltool.errors import UnknownProject
from labeltool.models import Example, Project
from labeltool.roles import Role, require
from labeltool.runs import DevErrorRate, in_run  # DevErrorRate: a run's fact, kept here too


def list_projects(session: Session) -> list[Project]:
    """Every project, newest first."""
    return list(session.scalars(select(Project).order_by(Project.created_at.desc(), Project.id)))


def get_project(session: Session, name: str) -> Project:
    """The project called `name`, or UnknownProject naming the ones that exist."""
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise UnknownProject(name, [p.name for p in list_projects(session)])
    return project


def delete_project(session: Session, name: str, *, user: str | None = None) -> DevErrorRate:
    """Delete the project called `name` with its examples, categories, tags and reviews.

    `user` acts: once the project has members, only a lead may delete it (labeltool.roles).
    Returns what it held, so the caller can say what was removed.
    """
    project = get_project(session, name)
    require(session, project_id=project.id, user=user, needs=Role.LEAD, action="deleting a project")
    held = dev_error_rate(session, project_id=project.id)
    # The foreign keys cascade (ON DELETE CASCADE) on SQLite and PostgreSQL alike.
    session.execute(delete(Project).where(Project.id == project.id))
    session.expire_all()
    return held


def dev_error_rate(
    session: Session, *, project_id: int, split: str = DEFAULT_SPLIT, run_id: int | None = None
) -> DevErrorRate:
    """Count the split's examples and errors with one query."""
    total, errors = session.execute(
        select(func.count(), func.coalesce(func.sum(cast(Example.is_error, Integer)), 0)).where(
            *in_run(project_id, run_id), Example.split == split
        )
    ).one()
    return DevErrorRate(dev_examples=int(total), misclassified=int(errors))
