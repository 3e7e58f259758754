"""Who may do what in a project: each member is its lead, a reviewer or a viewer.

- a *lead* shapes the analysis: the taxonomy (categories, their effort), the eyeball share,
  the runs (importing predictions), deleting the project, and who has which role;
- a *reviewer* does the review: tags, comments, corrected labels, marking examples reviewed;
- a *viewer* reads the report and the exports.

Each role may do what the roles below it may. The rule lives here, in the core, and the core
functions that change a project check it at their entry, so the pages and the CLI obey the same
rule. The acting user is the name a person works under: the Reviewer name on the pages, `--as`
or $LABELTOOL_USER on the command line (the same names tags record).

A project with no members is *open*: anyone may do anything in it, as before roles existed.
Its first member is its lead; from then on every guarded action checks the acting user's role,
and an action without a name is refused. Reading (the report, exports, the queue) is not
checked: a viewer's rights are everyone's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from labeltool import audit
from labeltool.errors import Forbidden, InvalidInput, UnknownProject
from labeltool.limits import MAX_REVIEWER, check_name
from labeltool.models import Project, ProjectMember

#: The environment variable naming the user the CLI acts as (when --as is not given).
USER_ENV_VAR = "LABELTOOL_USER"
#: Where a refused action without a name says to give one.
ACT_AS = f"--as NAME or {USER_ENV_VAR} on the command line, the Reviewer name on the pages"


class Role(enum.StrEnum):
    """A member's role in a project, lowest first: each may do what those before it may."""

    VIEWER = "viewer"
    REVIEWER = "reviewer"
    LEAD = "lead"

    def allows(self, needs: Role) -> bool:
        """Whether this role may do what `needs` may."""
        order = list(Role)
        return order.index(self) >= order.index(needs)


@dataclass(frozen=True)
class Member:
    """One member of a project and their role."""

    user: str
    role: Role
    added_at: datetime


def members(session: Session, *, project_id: int) -> list[Member]:
    """The project's members, leads first, then reviewers, then viewers, by name."""
    rows = session.scalars(select(ProjectMember).where(ProjectMember.project_id == project_id))
    order = list(reversed(Role))
    found = [Member(row.user, Role(row.role), row.added_at) for row in rows]
    return sorted(found, key=lambda m: (order.index(m.role), m.user))


def role_of(session: Session, project_id: int, user: str | None) -> Role | None:
    """`user`'s role in the project, or None when they are not a member (or no name)."""
    if not user or not user.strip():
        return None
    return _roles(session, project_id).get(" ".join(user.split()))


def is_open(session: Session, *, project_id: int) -> bool:
    """Whether the project has no members yet, so anyone may do anything in it."""
    return not _roles(session, project_id)


def require(
    session: Session, *, project_id: int, user: str | None, needs: Role, action: str
) -> None:
    """Forbidden unless `user` may do `action` in the project: its role allows `needs`, or
    the project is open (has no members). `action` names what is refused, e.g. "deleting a
    project"; the message says the role it needs and the role `user` has."""
    roles = _roles(session, project_id)
    if not roles:
        return
    name = " ".join(user.split()) if user else ""
    role = roles.get(name)
    if role is not None and role.allows(needs):
        return
    project = _project_name(session, project_id)
    if not name:
        raise Forbidden(
            f"{action} needs the {needs} role in '{project}', which has members: say who you "
            f"are ({ACT_AS})"
        )
    if role is None:
        leads = ", ".join(sorted(u for u, r in roles.items() if r is Role.LEAD))
        raise Forbidden(
            f"{action} needs the {needs} role; {name} is not a member of '{project}' "
            f"(its lead{'s' if ',' in leads else ''}: {leads})"
        )
    raise Forbidden(f"{action} needs the {needs} role; {name} is a {role} of '{project}'")


def set_role(
    session: Session, *, project_id: int, user: str, role: Role | str, by: str | None
) -> Member:
    """Give `user` the `role` in the project (adding them if new), acting as `by`.

    Only a lead may assign roles. The first member of a project is its lead: on an open
    project anyone may make someone its lead, and any other first role is refused, so a
    project never has members without a lead. The last lead cannot step down.
    """
    role = _role(role)
    user = check_name(user, what="a user name", limit=MAX_REVIEWER)
    roles = _roles(session, project_id)
    if not roles:
        _project_name(session, project_id)  # UnknownProject before anything is written
        if role is not Role.LEAD:
            raise InvalidInput(
                f"the first member of a project is its lead: make someone its lead before "
                f"giving {user} the {role} role"
            )
    else:
        require(session, project_id=project_id, user=by, needs=Role.LEAD, action="assigning roles")
        if roles.get(user) is Role.LEAD and role is not Role.LEAD:
            _refuse_last_lead(session, project_id, roles, user, doing=f"become a {role}")
    member = session.scalar(
        select(ProjectMember).where(
            ProjectMember.project_id == project_id, ProjectMember.user == user
        )
    )
    old = member.role if member is not None else None
    if member is None:
        member = ProjectMember(project_id=project_id, user=user, role=role.value)
        session.add(member)
    else:
        member.role = role.value
    session.flush()
    if old != role.value:
        audit.record(
            session,
            project_id=project_id,
            user=by,
            changes=[audit.Change(audit.Kind.MEMBER, field=user, old=old, new=role.value)],
        )
    _forget(session)
    return Member(member.user, role, member.added_at)


def remove_member(session: Session, *, project_id: int, user: str, by: str | None) -> None:
    """Take `user` out of the project's members, acting as `by` (who must be a lead).

    The last lead cannot be removed: the project would have members and no one to manage them.
    """
    roles = _roles(session, project_id)
    name = " ".join(user.split())
    require(session, project_id=project_id, user=by, needs=Role.LEAD, action="removing a member")
    if name not in roles:
        project = _project_name(session, project_id)
        raise InvalidInput(f"{name} is not a member of '{project}'")
    if roles[name] is Role.LEAD:
        _refuse_last_lead(session, project_id, roles, name, doing="be removed")
    session.execute(
        delete(ProjectMember).where(
            ProjectMember.project_id == project_id, ProjectMember.user == name
        )
    )
    audit.record(
        session,
        project_id=project_id,
        user=by,
        changes=[audit.Change(audit.Kind.MEMBER, field=name, old=roles[name].value)],
    )
    _forget(session)


# --- private helpers -------------------------------------------------------------------

#: session.info key of the roles read in the session's current transaction.
_CACHE = "labeltool.roles"


def _roles(session: Session, project_id: int) -> dict[str, Role]:
    """{user: role} of the project's members, read once per transaction (the labeling
    functions ask on every tag; one small query per project is enough)."""
    transaction = session.get_transaction()
    cached = session.info.get(_CACHE)
    if cached is None or cached[0] is not transaction:
        cached = (transaction, {})
        session.info[_CACHE] = cached
    known: dict[int, dict[str, Role]] = cached[1]
    if project_id not in known:
        rows = session.execute(
            select(ProjectMember.user, ProjectMember.role).where(
                ProjectMember.project_id == project_id
            )
        )
        known[project_id] = {user: Role(role) for user, role in rows}
    return known[project_id]


def _forget(session: Session) -> None:
    session.info.pop(_CACHE, None)


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(
            f"unknown role '{role}' (use {', '.join(r.value for r in reversed(Role))})"
        ) from None


def _project_name(session: Session, project_id: int) -> str:
    name = session.scalar(select(Project.name).where(Project.id == project_id))
    if name is None:
        raise UnknownProject(str(project_id))
    return name


def _refuse_last_lead(
    session: Session, project_id: int, roles: dict[str, Role], user: str, *, doing: str
) -> None:
    """InvalidInput when `user` is the project's only lead."""
    if [u for u, r in roles.items() if r is Role.LEAD] == [user]:
        project = _project_name(session, project_id)
        raise InvalidInput(
            f"{user} is the last lead of '{project}' and cannot {doing}: make someone else "
            "its lead first"
        )
