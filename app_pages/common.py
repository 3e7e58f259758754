"""What every page shares: the cached database, the chosen project and reviewer, one
transaction per user action, cached images, and the queue filter widgets.

Streamlit lives here and in the page files only; the labeltool core never imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app_pages.text import plain
from labeltool.db import Database
from labeltool.errors import LabeltoolError
from labeltool.images import ImageUnavailable, display_png
from labeltool.models import ReviewState
from labeltool.review_queue import NO_CATEGORY, ORDERS, QueueFilter

#: Said in the sidebar when sign-in is not configured (the reviewer name is whatever is typed).
WITHOUT_SIGN_IN = "Running without sign-in: names are typed, not checked."
#: The OpenID claims that name the signed-in reviewer, the first one present wins.
IDENTITY_CLAIMS = ("email", "name", "sub")

#: Session-state keys shared between pages.
PROJECT_KEY = "project_name"
#: The run the pages show (its name); the project's latest run when not chosen.
RUN_KEY = "run_name"
REVIEWER_KEY = "reviewer"
FLASH_KEY = "_flash"
#: A page sets this to switch the project on the next rerun (the picker is already drawn).
SELECT_PROJECT_KEY = "_select_project"

STATE_CHOICES = [s.value for s in ReviewState]
#: The "Against the previous run" choice that filters nothing (a selectbox shows None as no
#: choice at all, so "all errors" needs a value of its own).
ALL_ERRORS = "all"


@dataclass(frozen=True)
class RunChoice:
    """One of the project's runs, as the run picker lists it."""

    id: int
    name: str
    note: str = ""

    @property
    def label(self) -> str:
        """e.g. "2 · blur augmentation" (the run's name, then its note when it has one)."""
        return f"{self.name} · {self.note}" if self.note else self.name


@dataclass(frozen=True)
class ProjectInfo:
    """Plain values about the chosen project and run, safe to keep across reruns."""

    id: int
    name: str
    class_names: tuple[str, ...]
    images_root: str
    #: The share of the dev set reviewers look at (None: all of it).
    eyeball_fraction: float | None = None
    #: The share of the random queue two reviewers review (None: one each; double_review).
    overlap_fraction: float | None = None
    #: The project's runs, oldest first.
    runs: tuple[RunChoice, ...] = ()
    #: The run the pages show: the one picked in the sidebar, else the latest (None: no run).
    run_id: int | None = None

    @property
    def run(self) -> RunChoice | None:
        return next((r for r in self.runs if r.id == self.run_id), None)

    @property
    def previous_run(self) -> RunChoice | None:
        """The run before the one shown, or None when it is the first."""
        before = [r for r in self.runs if self.run_id is not None and r.id < self.run_id]
        return before[-1] if before else None

    @property
    def is_latest_run(self) -> bool:
        return not self.runs or self.run_id == self.runs[-1].id


@st.cache_resource(show_spinner="Opening the database…")
def database() -> Database:
    """The process-wide database (engine + migrations), from $LABELTOOL_DB."""
    return Database.open()


@contextmanager
def transaction() -> Iterator[Session]:
    """One user action = one transaction."""
    with database().begin() as session:
        yield session


#: Shown when the database refused a write that our own checks let through.
DATABASE_REFUSED = (
    "Nothing was saved: someone else changed this at the same moment (or the database was "
    "busy). Try again."
)


def action(function: Callable[..., object], *, success: str | None = None, **kwargs) -> object:
    """Run `function(session, **kwargs)` in one transaction (for widget callbacks).

    A refused write is kept and shown as st.error on the rerun, never as a traceback, and the
    transaction is rolled back so nothing half-done stays: a LabeltoolError says why; a write
    the database refused (another reviewer's change got in first, or it was busy) asks to retry.
    """
    try:
        with transaction() as session:
            result = function(session, **kwargs)
    except LabeltoolError as exc:
        st.session_state[FLASH_KEY] = ("error", str(exc))
        return None
    except (IntegrityError, OperationalError):
        st.session_state[FLASH_KEY] = ("error", DATABASE_REFUSED)
        return None
    if success:
        st.session_state[FLASH_KEY] = ("success", success)
    return result


def add_category(session: Session, **fields) -> None:
    """Create a category (fields as for categories.create_category) and say what it did,
    including how many reviewed examples now need re-review."""
    from labeltool.categories import create_category
    from labeltool.review_queue import review_progress

    category = create_category(session, **fields)
    rereview = review_progress(session, project_id=category.project_id).needs_rereview
    note = f"; {rereview} reviewed examples now need re-review" if rereview else ""
    flash("success", f"Added '{category.name}' (key {category.shortcut or 'none'}){note}")


def flash(kind: str, message: str) -> None:
    """Show `message` at the top of the next rerun, as plain text (it holds user text such as
    names and ids, so it is never read as Markdown)."""
    st.session_state[FLASH_KEY] = (kind, message)


def show_flash() -> None:
    """Show (once) the message left by the last action."""
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        kind, text = message
        (st.error if kind == "error" else st.success)(plain(text))


def sidebar_project_and_reviewer() -> None:
    """The sidebar's project picker and reviewer name, on every page.

    The project follows the URL (?project=NAME) so links can be shared. A link naming a
    project that does not exist says so before the page shows another one.
    """
    from labeltool.projects import list_projects

    with transaction() as session:
        names = [p.name for p in list_projects(session)]
        queried = st.session_state.get(PROJECT_KEY) or (names[0] if names else "")
        runs = _runs_of(session, queried)
    wanted = st.query_params.get("project")
    if (
        wanted in names
        and st.session_state.get(PROJECT_KEY) != wanted
        and ("_project_from_url" not in st.session_state)
    ):
        st.session_state[PROJECT_KEY] = wanted
    st.session_state["_project_from_url"] = True
    chosen = st.session_state.pop(SELECT_PROJECT_KEY, None)  # set by a page, e.g. after import
    if chosen in names:
        st.session_state[PROJECT_KEY] = chosen
    if names and st.session_state.get(PROJECT_KEY) not in names:
        st.session_state[PROJECT_KEY] = names[0]
    if wanted and wanted not in names and chosen not in names:
        _say_project_is_missing(wanted, instead=st.session_state.get(PROJECT_KEY))
    if queried != st.session_state.get(PROJECT_KEY, queried):  # a link or a page chose another
        with transaction() as session:
            runs = _runs_of(session, st.session_state[PROJECT_KEY])
    signing_in = sign_in_configured()
    if (
        not signing_in
        and not st.session_state.get(REVIEWER_KEY)
        and st.query_params.get("reviewer")
    ):
        st.session_state[REVIEWER_KEY] = st.query_params["reviewer"]
    with st.sidebar:
        if names:
            st.selectbox("Project", names, key=PROJECT_KEY, on_change=_project_changed)
            if st.query_params.get("project") != st.session_state[PROJECT_KEY]:
                # Only when it differs: every write sends the whole query back to the
                # browser, which would undo the review screen's own ?example= in the URL.
                st.query_params["project"] = st.session_state[PROJECT_KEY]
            _run_picker([run for _project, run in runs])
        else:
            st.info("No project yet. Import predictions on the Projects page.")
        if signing_in:
            _signed_in_as()
        else:
            st.text_input(
                "Reviewer",
                key=REVIEWER_KEY,
                placeholder="your name",
                help="Recorded on every tag you make. Remembered for this browser session.",
            )
            st.caption(WITHOUT_SIGN_IN)


def current_project() -> ProjectInfo | None:
    """The chosen project, or None when there is none yet."""
    from labeltool.errors import UnknownProject
    from labeltool.projects import get_project

    name = st.session_state.get(PROJECT_KEY)
    if not name:
        return None
    try:
        with transaction() as session:
            project = get_project(session, name)
            runs = tuple(run for _project, run in _runs_of(session, name))
    except UnknownProject:
        return None
    chosen = next((r for r in runs if r.name == st.session_state.get(RUN_KEY)), None)
    if chosen is None and runs:
        chosen = runs[-1]
    return ProjectInfo(
        id=project.id,
        name=project.name,
        class_names=tuple(project.class_names or ()),
        images_root=project.images_root,
        eyeball_fraction=project.eyeball_fraction,
        overlap_fraction=project.overlap_fraction,
        runs=runs,
        run_id=chosen.id if chosen else None,
    )


def require_project() -> ProjectInfo:
    """The chosen project; stops the page with a hint when there is none."""
    project = current_project()
    if project is None:
        st.info(
            "No project yet: import a predictions file on the **Projects** page, or run "
            "`labeltool import PREDICTIONS --project NAME`."
        )
        st.stop()
    return project


def reviewer() -> str:
    """Who makes the tags: the signed-in identity when sign-in is configured, else the name
    typed in the sidebar ("" when nobody is signed in or no name is given yet)."""
    if sign_in_configured():
        return signed_in_identity()
    return " ".join(str(st.session_state.get(REVIEWER_KEY, "")).split())


def sign_in_configured() -> bool:
    """Whether sign-in is on: Streamlit's secrets (.streamlit/secrets.toml) have an [auth]
    section for st.login. No secrets file at all means no sign-in, never an error."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def signed_in_identity() -> str:
    """The signed-in user's email (else their name, else the provider's subject id), or ""
    when nobody is signed in."""
    if not st.user.get("is_logged_in"):
        return ""
    for claim in IDENTITY_CLAIMS:
        value = " ".join(str(st.user.get(claim) or "").split())
        if value:
            return value
    return ""


def needs_sign_in() -> bool:
    """Whether this browser must sign in before it sees any page."""
    return sign_in_configured() and not signed_in_identity()


def sign_in_screen() -> None:
    """The only screen shown when sign-in is configured and nobody is signed in."""
    st.title("Sign in")
    st.write("labeltool records who made every tag: sign in to review.")
    st.button("Sign in", key="sign_in", type="primary", on_click=st.login)


def image_png(images_root: str, image: str, min_side: int) -> bytes | str:
    """PNG bytes for display (cached), or the reason the image cannot be shown (not cached: a
    remote image that timed out may answer next time; labeltool.storage remembers a failure
    for a minute, so asking again is cheap)."""
    try:
        return _display_png(images_root, image, min_side)
    except ImageUnavailable as exc:
        return str(exc)


def show_image(
    project: ProjectInfo,
    image: str,
    *,
    min_side: int,
    caption: str | None = None,
    width: int | str = "content",
) -> None:
    """Draw an example's image, or a clear message when it cannot be read."""
    png = image_png(project.images_root, image, min_side)
    if isinstance(png, str):
        st.warning(f"🚫 {png}")
    else:
        st.image(png, caption=caption, width=width)


def queue_filter_widgets(project: ProjectInfo, *, pairs, categories) -> QueueFilter:
    """The queue filter in the sidebar; returns the QueueFilter it describes.

    `pairs` is review_queue.confusion_pairs' frame, `categories` the project's categories.
    The values live in session state, so the review and gallery pages share one filter.
    """
    pair_labels = ["any"] + [
        f"{row.confusion_pair} ({row.errors})" for row in pairs.itertuples(index=False)
    ]
    category_ids = {"any": None, "(no category yet)": NO_CATEGORY}
    category_ids |= {c.name: c.id for c in categories}
    defaults = {
        "q_states": [ReviewState.UNREVIEWED.value],
        "q_pair": "any",
        "q_category": "any",
        "q_confidence": (0.0, 1.0),
        "q_order": ORDERS[0],
        "q_change": ALL_ERRORS,
    }
    for key, value in defaults.items():
        # Keep values across pages (Streamlit forgets widgets a page did not draw) and
        # fall back to the default when a choice no longer exists.
        current = st.session_state.get(key, value)
        if (
            (key == "q_pair" and current not in pair_labels)
            or (key == "q_category" and current not in category_ids)
            or (key == "q_change" and project.previous_run is None)
        ):
            current = value
        st.session_state[key] = current
    with st.sidebar:
        st.subheader("Queue")
        states = st.multiselect(
            "Review state",
            STATE_CHOICES,
            key="q_states",
            help="Empty shows every error. 'needs re-review' lists examples reviewed before a "
            "category was added.",
        )
        pair_choice = st.selectbox(
            "Confusion pair",
            pair_labels,
            key="q_pair",
            help="true label -as- predicted label, most frequent first",
        )
        category_choice = st.selectbox("Category", list(category_ids), key="q_category")
        low, high = st.slider("Confidence", 0.0, 1.0, step=0.05, key="q_confidence")
        if project.previous_run is not None:
            before = project.previous_run.name
            change_labels = {
                ALL_ERRORS: "all errors",
                "new": f"new: right in run {before}",
                "still wrong": f"still wrong: wrong in run {before} too",
                "fixed": f"fixed: run {before}'s errors this run gets right",
            }
            st.selectbox(
                "Against the previous run",
                list(change_labels),
                key="q_change",
                format_func=change_labels.__getitem__,
                help="Errors that are new in this run, still there, or fixed since the run "
                "before it (matched by example id). 'fixed' lists the previous run's rows of "
                "those examples, with that run's prediction.",
            )
        order = st.radio(
            "Order",
            ORDERS,
            key="q_order",
            help="Random is a fair sample of the errors (fixed seed).",
        )
    pair = None
    if pair_choice != "any":
        row = pairs.iloc[pair_labels.index(pair_choice) - 1]
        pair = (row["label"], row["prediction"])
    return QueueFilter(
        states=tuple(states),
        confusion_pair=pair,
        category_id=category_ids[category_choice],
        min_confidence=low,
        max_confidence=high,
        order=order,
        run_id=project.run_id,
        change=(
            None
            if project.previous_run is None or st.session_state["q_change"] == ALL_ERRORS
            else st.session_state["q_change"]
        ),
    )


def run_caption(project: ProjectInfo, queue: QueueFilter | None = None) -> None:
    """Say which run the page shows when the project has several (and, for a queue compared
    with the previous run, what it holds)."""
    run = project.run
    if run is None or len(project.runs) < 2:
        return
    which = "the latest run" if project.is_latest_run else "an earlier run, not the latest"
    text = f"🧪 Run {plain(run.label)}: {which} of {len(project.runs)}."
    previous = project.previous_run
    if queue is not None and queue.change is not None and previous is not None:
        text += {
            "new": f" Queue: its errors that run {plain(previous.name)} got right.",
            "still wrong": f" Queue: its errors that run {plain(previous.name)} got wrong too.",
            "fixed": f" Queue: run {plain(previous.name)}'s errors that this run gets right, "
            f"shown with run {plain(previous.name)}'s prediction.",
        }[queue.change]
    st.caption(text)


def _signed_in_as() -> None:
    """The sidebar's signed-in identity, with the button that signs out."""
    st.text(f"Signed in as {signed_in_identity()}")  # st.text: the identity is never Markdown
    st.button("Sign out", key="sign_out", on_click=st.logout)


def _say_project_is_missing(name: str, *, instead: str | None) -> None:
    """The link names a project that does not exist (renamed, deleted or mistyped)."""
    text = f"No project named '{plain(name)}'."
    if instead:
        text += f" Showing project '{plain(instead)}' instead; pick another in the sidebar."
    st.error(text)


def _runs_of(session: Session, project_name: str) -> list[tuple[str, RunChoice]]:
    """(project name, run) for each run of the project called `project_name`, oldest first:
    one small query on the runs table (never on the examples)."""
    from sqlalchemy import select

    from labeltool.models import Project, Run

    rows = session.execute(
        select(Project.name, Run.id, Run.name, Run.note)
        .join(Run, Run.project_id == Project.id)
        .where(Project.name == project_name)
        .order_by(Run.id)
    )
    return [
        (project, RunChoice(id=id_, name=name, note=note or ""))
        for project, id_, name, note in rows
    ]


def _run_picker(runs: list[RunChoice]) -> None:
    """The sidebar's run picker: newest first, the latest by default. It follows ?run=NAME
    when the app is opened from a link, and keeps the URL naming any run but the latest."""
    if not runs:
        return
    names = [r.name for r in reversed(runs)]
    wanted = st.query_params.get("run")
    if wanted in names and "_run_from_url" not in st.session_state:
        st.session_state[RUN_KEY] = wanted
    st.session_state["_run_from_url"] = True
    if st.session_state.get(RUN_KEY) not in names:
        st.session_state[RUN_KEY] = names[0]
    labels = {r.name: r.label for r in runs}
    st.selectbox(
        "Run",
        names,
        key=RUN_KEY,
        format_func=lambda name: f"{labels[name]} (latest)" if name == names[0] else labels[name],
        on_change=_run_changed,
        disabled=len(names) == 1,
        help="Which model's predictions to review and report on. Import another model's "
        "predictions as a new run (`labeltool import … --run NAME`) to compare them.",
    )
    shown = None if st.session_state[RUN_KEY] == names[0] else st.session_state[RUN_KEY]
    if st.query_params.get("run") != shown:  # only when it differs (see the project's URL)
        if shown is None:
            st.query_params.pop("run", None)
        else:
            st.query_params["run"] = shown


def _run_changed() -> None:
    st.query_params.pop("example", None)
    st.session_state.pop("current_pk", None)
    st.session_state.pop("history", None)


def _project_changed() -> None:
    st.query_params["project"] = st.session_state[PROJECT_KEY]
    st.query_params.pop("example", None)
    st.query_params.pop("run", None)
    st.session_state.pop(RUN_KEY, None)
    st.session_state.pop("current_pk", None)
    st.session_state.pop("history", None)


@st.cache_data(max_entries=4096, show_spinner=False)
def _display_png(images_root: str, image: str, min_side: int) -> bytes:
    return display_png(images_root, image, min_side=min_side)
