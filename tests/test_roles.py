"""Roles per project, enforced in the core: a project without members is open to anyone; once
it has members, a lead shapes the analysis, a reviewer reviews, a viewer only reads, and the
CLI and the pages are refused exactly as the core functions are, with the role needed named."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from labeltool import eyeball, labeling, review_actions
from labeltool.categories import create_category, load_categories_file, update_category
from labeltool.cli import cli
from labeltool.db import Database
from labeltool.errors import Forbidden, InvalidInput
from labeltool.importing import import_predictions
from labeltool.models import Category, Example, Project, Tag
from labeltool.projects import delete_project
from labeltool.roles import Role, members, remove_member, require, role_of, set_role
from tests.conftest import make_rows
from tests.test_report import make_project

REFUSED_DELETE = "deleting a project needs the lead role; bob is a reviewer of 'run1'"


@pytest.fixture
def project(db: Database, write_predictions) -> int:
    """Project "run1" (20 dev examples, 4 misclassified) with the category "blurry"; open."""
    project_id = make_project(db, write_predictions, dev=20, errors=4)
    with db.begin() as session:
        create_category(session, project_id=project_id, name="blurry")
    return project_id


@pytest.fixture
def team(db: Database, project: int) -> int:
    """The same project with members: ann its lead, bob a reviewer, cy a viewer."""
    with db.begin() as session:
        set_role(session, project_id=project, user="ann", role="lead", by=None)
        set_role(session, project_id=project, user="bob", role="reviewer", by="ann")
        set_role(session, project_id=project, user="cy", role="viewer", by="ann")
    return project


def test_an_open_project_lets_anyone_do_anything(db: Database, project: int) -> None:
    """Without members, any name or none may add a category, tag and delete the project."""
    with db.begin() as session:
        category = create_category(session, project_id=project, name="dark", user=None)
        labeling.set_tag(
            session, example_pks=_errors(session, project), category_id=category.id, reviewer="zed"
        )
        delete_project(session, "run1", user="zed")
    assert _projects(db) == 0


def test_the_first_member_is_the_lead(db: Database, project: int) -> None:
    """An open project's first member must be made its lead: another role is refused."""
    with db.begin() as session, pytest.raises(InvalidInput, match="first member .* its lead"):
        set_role(session, project_id=project, user="bob", role="reviewer", by=None)
    with db.begin() as session:
        set_role(session, project_id=project, user="ann", role=Role.LEAD, by=None)
    with db.begin() as session:
        assert [(m.user, m.role) for m in members(session, project_id=project)] == [
            ("ann", Role.LEAD)
        ]


def test_a_reviewer_cannot_delete_the_project_but_a_lead_can(db: Database, team: int) -> None:
    """The core refuses bob (a reviewer) and a nameless caller, naming the role needed and
    who to act as; the project keeps everything; ann (its lead) deletes it."""
    with db.begin() as session, pytest.raises(Forbidden) as refused:
        delete_project(session, "run1", user="bob")
    assert str(refused.value) == REFUSED_DELETE
    with db.begin() as session, pytest.raises(Forbidden, match="--as NAME or LABELTOOL_USER"):
        delete_project(session, "run1")
    assert _projects(db) == 1

    with db.begin() as session:
        delete_project(session, "run1", user="ann")
    assert _projects(db) == 0


def test_a_reviewer_can_tag_but_cannot_change_the_taxonomy(db: Database, team: int) -> None:
    """bob tags and comments; adding, archiving, or setting the effort of a category, loading
    a categories file, the eyeball share and importing a run are refused as needing a lead."""
    with db.begin() as session:
        blurry = session.scalar(select(Category.id))
        pks = _errors(session, team)
        assert labeling.set_tag(session, example_pks=pks, category_id=blurry, reviewer="bob") == 4
        labeling.set_comment(session, example_pk=pks[0], comment="dark", user="bob")
    refusals = {
        "adding a category": lambda s: create_category(s, project_id=team, name="x", user="bob"),
        "archiving a category": lambda s: update_category(
            s, category_id=blurry, archived=True, user="bob"
        ),
        "setting a category's effort": lambda s: update_category(
            s, category_id=blurry, effort=2.0, user="bob"
        ),
        "setting the eyeball share": lambda s: eyeball.set_eyeball_fraction(
            s, project_id=team, fraction=0.5, user="bob"
        ),
        "adding categories": lambda s: load_categories_file(
            s, "categories.csv", project_id=team, user="bob"
        ),
        "making a confusion pair a category": lambda s: labeling.category_from_confusion_pair(
            s, project_id=team, label="cat", prediction="dog", reviewer="bob"
        ),
    }
    for action, attempt in refusals.items():
        with db.begin() as session, pytest.raises(Forbidden) as refused:
            attempt(session)
        assert str(refused.value) == f"{action} needs the lead role; bob is a reviewer of 'run1'"
    with db.begin() as session:
        assert session.scalars(select(Category.name)).all() == ["blurry"]
        assert session.scalar(select(Project.eyeball_fraction)) is None


def test_importing_a_run_needs_the_lead(db: Database, team: int, write_predictions) -> None:
    """Importing predictions into a project with members is the lead's: bob is refused
    before the file is read, ann imports a second run."""
    path = write_predictions(make_rows(20, errors=5), name="v2.csv", images=False)
    with db.begin() as session, pytest.raises(Forbidden, match="importing a run needs the lead"):
        import_predictions(session, path, project="run1", run="2", check_images=False, user="bob")
    with db.begin() as session:
        summary = import_predictions(
            session, path, project="run1", run="2", check_images=False, user="ann"
        )
    assert summary.run == "2"


def test_a_viewer_or_a_stranger_cannot_tag(db: Database, team: int) -> None:
    """cy (a viewer) and dan (no member) are refused every reviewer's action, each message
    naming the role needed; no tag is made."""
    with db.begin() as session:
        blurry = session.scalar(select(Category.id))
        pks = _errors(session, team)
    with db.begin() as session, pytest.raises(Forbidden) as refused:
        labeling.set_tag(session, example_pks=pks, category_id=blurry, reviewer="cy")
    assert str(refused.value) == "tagging needs the reviewer role; cy is a viewer of 'run1'"
    with db.begin() as session, pytest.raises(Forbidden) as refused:
        labeling.toggle_tag(session, example_pk=pks[0], category_id=blurry, reviewer="dan")
    assert str(refused.value) == (
        "tagging needs the reviewer role; dan is not a member of 'run1' (its lead: ann)"
    )
    with db.begin() as session, pytest.raises(Forbidden, match="marking examples reviewed"):
        labeling.mark_reviewed(session, example_pks=pks, reviewer="cy")
    with db.begin() as session, pytest.raises(Forbidden, match="correcting a label needs"):
        labeling.set_corrected_label(session, example_pk=pks[0], corrected_label="cat", user="cy")
    with db.begin() as session:
        assert session.scalar(select(func.count()).select_from(Tag)) == 0


def test_the_review_screen_refuses_a_viewers_actions_one_by_one(db: Database, team: int) -> None:
    """The review screen's actions of a viewer are each refused with the reason; the same
    actions of a reviewer apply."""
    with db.begin() as session:
        pk = _errors(session, team)[0]
    raw = [
        {"seq": 1, "kind": "comment", "pk": pk, "reviewer": who, "text": "dark"}
        for who in ("cy", "bob")
    ]
    with db.begin() as session:
        results = [
            review_actions.apply_actions(
                session,
                project_id=team,
                actions=review_actions.parse_actions([action]),
            )[0]
            for action in raw
        ]
    assert "commenting needs the reviewer role; cy is a viewer" in results[0].error
    assert results[1].applied


def test_only_a_lead_assigns_roles(db: Database, team: int) -> None:
    """bob (a reviewer) and a nameless caller cannot give roles; ann (the lead) can."""
    with db.begin() as session, pytest.raises(Forbidden, match="assigning roles needs the lead"):
        set_role(session, project_id=team, user="bob", role="lead", by="bob")
    with db.begin() as session, pytest.raises(Forbidden, match="removing a member needs the lead"):
        remove_member(session, project_id=team, user="cy", by="bob")
    with db.begin() as session, pytest.raises(Forbidden, match="say who you are"):
        set_role(session, project_id=team, user="dan", role="viewer", by=None)

    with db.begin() as session:
        set_role(session, project_id=team, user="cy", role="reviewer", by="ann")
        remove_member(session, project_id=team, user="bob", by="ann")
    with db.begin() as session:
        assert role_of(session, team, "cy") is Role.REVIEWER
        assert role_of(session, team, "bob") is None


def test_the_last_lead_cannot_be_removed_or_step_down(db: Database, team: int) -> None:
    """ann, the only lead, can neither leave nor become a reviewer; once bob is a lead too,
    she can."""
    with db.begin() as session, pytest.raises(InvalidInput, match="ann is the last lead"):
        remove_member(session, project_id=team, user="ann", by="ann")
    with db.begin() as session, pytest.raises(InvalidInput, match="ann is the last lead"):
        set_role(session, project_id=team, user="ann", role="reviewer", by="ann")

    with db.begin() as session:
        set_role(session, project_id=team, user="bob", role="lead", by="ann")
        remove_member(session, project_id=team, user="ann", by="bob")
    with db.begin() as session:
        assert [(m.user, m.role) for m in members(session, project_id=team)] == [
            ("bob", Role.LEAD),
            ("cy", Role.VIEWER),
        ]


def test_an_unknown_role_is_refused_with_the_roles_there_are(db: Database, team: int) -> None:
    """A misspelt role names the three roles."""
    with db.begin() as session, pytest.raises(InvalidInput, match="use lead, reviewer, viewer"):
        set_role(session, project_id=team, user="dan", role="admin", by="ann")


def test_require_reads_the_members_once_per_transaction(db: Database, team: int) -> None:
    """Checking many actions in one transaction asks the database for the members once."""
    from tests.conftest import recorded_statements

    with db.begin() as session:
        require(session, project_id=team, user="bob", needs=Role.REVIEWER, action="tagging")
        with recorded_statements() as seen:
            for _ in range(5):
                require(session, project_id=team, user="bob", needs=Role.REVIEWER, action="x")
    assert seen == []


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_refuses_a_reviewer_deleting_with_as_or_the_environment(
    db_url: str, db: Database, team: int
) -> None:
    """`--as bob` and LABELTOOL_USER=bob both exit 1 with the refusal; `--as ann` deletes."""
    by_option = _cli(db_url, "--as", "bob", "delete-project", "run1", "--yes")
    by_environment = _cli(db_url, "delete-project", "run1", "--yes", env={"LABELTOOL_USER": "bob"})
    nameless = _cli(db_url, "delete-project", "run1", "--yes")
    for result in (by_option, by_environment):
        assert result.exit_code == 1
        assert result.stderr == f"Error: {REFUSED_DELETE}\n"
    assert nameless.exit_code == 1 and "--as NAME or LABELTOOL_USER" in nameless.stderr
    assert _projects(db) == 1

    done = _cli(db_url, "--as", "ann", "delete-project", "run1", "--yes")
    assert done.exit_code == 0, done.stderr
    assert _projects(db) == 0


def test_cli_members_and_member(db_url: str, db: Database, project: int) -> None:
    """`member` makes the first member the lead; then only the lead (--as) adds others;
    `members` lists them, leads first."""
    empty = _cli(db_url, "members", "--project", "run1")
    assert "has no members: anyone may do anything" in empty.stdout
    first = _cli(db_url, "member", "--project", "run1", "ann", "--role", "lead")
    assert first.stdout == "ann is now a lead of 'run1'\n"
    refused = _cli(db_url, "member", "--project", "run1", "bob", "--role", "reviewer")
    assert refused.exit_code == 1 and "assigning roles needs the lead role" in refused.stderr
    added = _cli(db_url, "--as", "ann", "member", "--project", "run1", "bob", "--role", "reviewer")
    assert added.exit_code == 0, added.stderr

    listed = _cli(db_url, "members", "--project", "run1")
    assert listed.stdout == "ann\tlead\nbob\treviewer\n"
    gone = _cli(db_url, "--as", "ann", "member", "--project", "run1", "bob", "--remove")
    assert gone.stdout == "bob is no longer a member of 'run1'\n"
    both = _cli(db_url, "member", "--project", "run1", "bob", "--role", "lead", "--remove")
    assert both.exit_code == 2


def test_cli_eyeball_share_needs_the_lead(db_url: str, db: Database, team: int) -> None:
    """`eyeball --share` as a reviewer is refused; as the lead it is set."""
    refused = _cli(db_url, "--as", "bob", "eyeball", "--project", "run1", "--share", "50")
    assert refused.exit_code == 1
    assert "setting the eyeball share needs the lead role" in refused.stderr
    done = _cli(db_url, "--as", "ann", "eyeball", "--project", "run1", "--share", "50")
    assert done.exit_code == 0, done.stderr
    with db.begin() as session:
        assert session.scalar(select(Project.eyeball_fraction)) == 0.5


# --- the pages -------------------------------------------------------------------------------


def test_projects_page_refuses_a_reviewer_deleting(sqlite_db: Database, write_predictions, run_app):
    """On the Projects page bob (a reviewer) typing the name and pressing Delete sees the
    refusal; the project stays."""
    project = make_project(sqlite_db, write_predictions, dev=20, errors=4)
    with sqlite_db.begin() as session:
        set_role(session, project_id=project, user="ann", role="lead", by=None)
        set_role(session, project_id=project, user="bob", role="reviewer", by="ann")
    app = run_app(sqlite_db, "app_pages/projects.py")
    app.session_state["reviewer"] = "bob"
    app.text_input(key="delete_confirm").input("run1").run()
    app.button(key="delete_project").click().run()

    assert not app.exception, app.exception
    assert any("needs the lead role; bob is a reviewer of" in e.value for e in app.error)
    assert _projects(sqlite_db) == 1


def test_projects_page_members_section(sqlite_db: Database, write_predictions, run_app):
    """The Members section makes ann the lead of an open project, then ann adds bob as a
    reviewer and the table lists both; bob cannot give roles."""
    project = make_project(sqlite_db, write_predictions, dev=20, errors=4)
    app = run_app(sqlite_db, "app_pages/projects.py")
    app.session_state["reviewer"] = "ann"
    app.text_input(key="member_user").input("ann").run()
    app.selectbox(key="member_role").select("lead").run()
    app.button(key="member_set").click().run()
    app.text_input(key="member_user").input("bob").run()
    app.selectbox(key="member_role").select("reviewer").run()
    app.button(key="member_set").click().run()

    assert not app.exception, app.exception
    assert any("bob is now a reviewer of" in s.value for s in app.success)
    table = next(d.value for d in app.dataframe if "role" in d.value.columns)
    assert list(table["user"]) == ["ann", "bob"]

    app.session_state["reviewer"] = "bob"
    app.text_input(key="member_user").input("cy").run()
    app.button(key="member_set").click().run()
    assert any("assigning roles needs the lead role" in e.value for e in app.error)
    with sqlite_db.begin() as session:
        assert [m.user for m in members(session, project_id=project)] == ["ann", "bob"]


def test_categories_page_refuses_a_reviewer_adding_a_category(
    sqlite_db: Database, write_predictions, run_app
):
    """bob (a reviewer) adding a category on the Categories page sees the refusal; nothing
    is added."""
    project = make_project(sqlite_db, write_predictions, dev=20, errors=4)
    with sqlite_db.begin() as session:
        set_role(session, project_id=project, user="ann", role="lead", by=None)
        set_role(session, project_id=project, user="bob", role="reviewer", by="ann")
    app = run_app(sqlite_db, "app_pages/categories.py")
    app.session_state["reviewer"] = "bob"
    app.text_input(key="new_name").input("dark")
    [b for b in app.button if b.label == "Add category"][0].click().run()

    assert not app.exception, app.exception
    assert any("adding a category needs the lead role" in e.value for e in app.error)
    with sqlite_db.begin() as session:
        assert session.scalar(select(func.count()).select_from(Category)) == 0


# --- helpers ---------------------------------------------------------------------------------


def _cli(db_url: str, *args: str, env: dict[str, str] | None = None):
    runner = CliRunner(env={"LABELTOOL_USER": None, **(env or {})})
    return runner.invoke(cli, ["--db", db_url, *args], prog_name="labeltool")


def _errors(session, project_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Example.id)
            .where(Example.project_id == project_id, Example.is_error)
            .order_by(Example.id)
        )
    )


def _projects(db: Database) -> int:
    with db.begin() as session:
        return session.scalar(select(func.count()).select_from(Project))
