"""Ceiling report: each error category's share of the reviewed errors, its ceiling (the most
the dev error can fall if it is fixed), the ranking by effort, and the tables to download."""

from collections.abc import Callable

import altair as alt
import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from app_pages.common import (
    ProjectInfo,
    action,
    database,
    require_project,
    reviewer,
    run_caption,
    show_flash,
    transaction,
)
from app_pages.text import plain
from labeltool import (
    agreement,
    double_review,
    eyeball,
    report,
    report_cache,
    review_queue,
    signals,
    splits,
)
from labeltool.categories import list_categories, update_category
from labeltool.export import FIXED_COLUMNS, corrections_table, long_table, to_csv, wide_table
from labeltool.models import Project, confusion_pair_name

#: Every percentage on the page: one decimal.
PERCENT = "{:.1%}"
#: The ceiling table's columns that are fractions, shown as percentages.
PERCENT_COLUMNS = report.FRACTION_COLUMNS
#: The colour of reviewed errors in no category, and of the error left after a fix.
GREY = "#9e9e9e"
#: The counting modes as the page names them.
COUNTING_LABELS = {
    report.ADJUDICATED: "adjudicated",
    report.CONSENSUS: "consensus",
    report.ANY: "any reviewer",
}


def _percentages(frame: pd.DataFrame, columns) -> Styler:
    """`frame` for st.dataframe with its fraction `columns` shown as percentages, one decimal
    (the values stay fractions, so the table still sorts and exports as numbers)."""
    present = [c for c in columns if c in frame]
    return frame.style.format(PERCENT, subset=present, na_rep="–")


def _points(fraction: float) -> str:
    """A fraction of the dev set in points of dev error (1 point = 1%), two decimals."""
    return "–" if pd.isna(fraction) else f"{fraction * 100:.2f}"


def _interval(frame: pd.DataFrame, low: str, high: str, order: list[str]) -> alt.LayerChart:
    """A black bar with end ticks from `low` to `high` on each category's row."""
    y = alt.Y("category:N", sort=order, title=None)
    line = (
        alt.Chart(frame)
        .mark_rule(color="black", strokeWidth=2)
        .encode(x=f"{low}:Q", x2=f"{high}:Q", y=y)
    )
    ends = [
        alt.Chart(frame).mark_tick(color="black", thickness=2, size=12).encode(x=f"{end}:Q", y=y)
        for end in (low, high)
    ]
    return alt.layer(line, *ends)


def _csv_when_clicked(db, build) -> Callable[[], bytes]:
    """The bytes of `build(session)` as CSV, made in a transaction of their own only when the
    download is clicked (Streamlit calls it outside the script, so nothing here draws)."""

    def make() -> bytes:
        with db.begin() as session:
            return to_csv(build(session)).encode("utf-8")

    return make


project: ProjectInfo = require_project()
run_id = project.run_id
show_flash()

st.header("Ceiling report")
run_caption(project)
if len(project.runs) > 1:
    st.page_link("app_pages/compare.py", label="Compare this run with another", icon="⚖️")
st.caption(
    "Share of errors: the reviewed errors put in a category (an error can be in several, so "
    "shares need not add up to 100%). Ceiling: share × dev error, the most the dev error can "
    "fall if the category is fixed perfectly. Intervals are Wilson 95%."
)

# --- slices ---------------------------------------------------------------------------------
with transaction() as session:
    reviewers = report.reviewer_counts(session, project_id=project.id, run_id=run_id)
    pairs = review_queue.confusion_pairs(session, project_id=project.id, run_id=run_id)
pair_errors = {(r.label, r.prediction): r.errors for r in pairs.itertuples(index=False)}
left, middle, right = st.columns(3)
who = left.selectbox(
    "Reviewer",
    [None, *reviewers["reviewer"]],
    format_func=lambda name: "everyone" if name is None else name,
    key="report_reviewer",
    help="Only the errors this reviewer reviewed, and only their tags.",
)
pair = right.selectbox(
    "Confusion pair",
    [None, *pair_errors],
    format_func=lambda p: (
        "all errors" if p is None else f"{confusion_pair_name(*p)} ({pair_errors[p]} errors)"
    ),
    key="report_pair",
    help="Only the errors of one confusion pair (true label -as- predicted label); ceilings "
    "then use that pair's part of the dev error.",
)
counting = middle.selectbox(
    "Counting",
    list(report.COUNTING),
    format_func=COUNTING_LABELS.get,
    key="report_counting",
    help="How an error several reviewers reviewed counts under a category: adjudicated, the "
    "lead's decision where there is one (elsewhere any reviewer's tag); consensus, only when "
    "every reviewer who reviewed it tagged it; any reviewer, when anyone tagged it.",
)
scope = {
    "project_id": project.id,
    "reviewer": who,
    "confusion_pair": pair,
    "run_id": run_id,
    "counting": counting,
}

# Each number once per rerun: the ranking by effort is derived from this table, and the
# downloads are built only when one is clicked (see the end of the page).
with transaction() as session:
    top = report.headline(session, **scope)
    table = report.ceiling_table(session, **scope, top=top)
    categories = list_categories(session, project_id=project.id, include_archived=True)
    accounting = (
        report.incorrect_label_accounting(session, **scope, top=top)
        if any(c.marks_incorrect_label for c in categories)
        else None
    )

# --- headline -------------------------------------------------------------------------------
metrics = st.columns(4)
metrics[0].metric("Dev examples", f"{top.dev_examples:,}")
metrics[1].metric(
    "Misclassified" if pair is None else f"Misclassified as {plain(confusion_pair_name(*pair))}",
    f"{top.misclassified:,}",
)
metrics[2].metric(
    "Dev error" if pair is None else "Its part of the dev error", f"{top.dev_error:.1%}"
)
metrics[3].metric("Reviewed errors", f"{top.reviewed:,}")
(st.warning if top.reviewed < review_queue.TOO_FEW_TO_RANK else st.caption)(top.sample_guidance)
# Which counting the numbers use, and what is left for the lead to decide.
(st.warning if top.awaiting_adjudication else st.caption)(
    f"{plain(top.counting_sentence)}."
    + (" A lead settles them on the **Adjudicate** page." if top.awaiting_adjudication else "")
)
if top.reviewed:
    # What the shares below rest on: random reviews only; targeted ones are counted apart.
    (st.warning if top.targeted and not top.random_reviews else st.caption)(
        f"The shares are estimated {top.estimate_basis}. Reviews reached by another filter, "
        "the confidence order or by hand are a targeted look: useful for finding categories, "
        "not for measuring them."
    )
if top.carried_warning:
    st.warning(f"{top.carried_warning}.")
if accounting is not None:
    st.info(f"**Incorrectly labeled:** {plain(accounting.sentence)}. {plain(accounting.hint)}")

# --- the ceiling table and its charts ---------------------------------------------------------
archived = set(table.attrs.get("archived", ()))
shown = table.copy()
shown["category"] = [f"{n} (archived)" if n in archived else n for n in shown["category"]]
st.subheader("Categories by share of errors")
ranked = shown[table["category"] != report.NO_CATEGORY]  # not yet explained: apart, below
st.dataframe(
    _percentages(ranked, PERCENT_COLUMNS),
    key="ceiling_table",
    hide_index=True,
    width="stretch",
    column_config={
        "errors": st.column_config.Column("errors", help="Reviewed errors in the category"),
        "reviewed": st.column_config.Column(
            "reviewed", help="The reviews that could have used the category: its denominator"
        ),
        "too_few": st.column_config.CheckboxColumn(
            "too few", help=f"Fewer than {review_queue.TOO_FEW_TO_RANK} reviews to rank it on"
        ),
        "share": st.column_config.Column("share of errors"),
        "ci_low": st.column_config.Column("95% low"),
        "ci_high": st.column_config.Column("95% high"),
        "ceiling": st.column_config.Column(
            "ceiling", help="The most the dev error can fall if it is fixed"
        ),
        "ceiling_low": st.column_config.Column("ceiling 95% low"),
        "ceiling_high": st.column_config.Column("ceiling 95% high"),
        "error_after_fix": st.column_config.Column("error after fix"),
        "error_after_fix_low": st.column_config.Column("error after fix 95% low"),
        "error_after_fix_high": st.column_config.Column("error after fix 95% high"),
        "archived": st.column_config.CheckboxColumn("archived"),
    },
)
if top.reviewed:
    unexplained = top.not_yet_explained_share or 0.0
    st.caption(
        f"**Not yet explained:** {top.not_yet_explained} of the {top.reviewed} reviewed errors "
        f"({unexplained:.1%}) are in no category yet: apart from the ranking, with no ceiling "
        "(drawn in grey below as (no category))."
    )

# Each category in its own colour (the one reviewers see on the review screen).
colour_of = {c.name: c.colour for c in categories}
order = shown["category"].tolist()
colours = alt.Scale(domain=order, range=[colour_of.get(name, GREY) for name in table["category"]])
share_axis = alt.X("share:Q", title="share of reviewed errors", axis=alt.Axis(format="%"))
bars = (
    alt.Chart(shown)
    .mark_bar()
    .encode(
        x=share_axis.scale(domain=[0, 1]),
        y=alt.Y("category:N", sort=order, title=None),
        color=alt.Color("category:N", scale=colours, legend=None),
        tooltip=[
            "category",
            "errors",
            alt.Tooltip("share:Q", format=".1%"),
            alt.Tooltip("ci_low:Q", title="95% low", format=".1%"),
            alt.Tooltip("ci_high:Q", title="95% high", format=".1%"),
        ],
    )
)
st.altair_chart(
    (bars + _interval(shown, "ci_low", "ci_high", order)).properties(
        title="Share of errors (bar: 95% interval)"
    ),
    width="stretch",
    key="share_chart",
)

# The ceiling is share x dev error, so it inherits the share's interval: the best-case error
# after the fix lies between dev error x (1 - ci_high) and dev error x (1 - ci_low).
fixable = shown[table["category"] != report.NO_CATEGORY].copy()
fixable["dev_error"] = top.dev_error
if "error_after_fix_low" in table:
    fixable["best"] = fixable["error_after_fix_low"]
    fixable["worst"] = fixable["error_after_fix_high"]
else:
    fixable["best"] = top.dev_error * (1 - fixable["ci_high"])
    fixable["worst"] = top.dev_error * (1 - fixable["ci_low"])
fixable_order = fixable["category"].tolist()
after_fix_y = alt.Y("category:N", sort=fixable_order, title=None)
left_after_fix = (
    alt.Chart(fixable)
    .mark_bar(color=GREY)
    .encode(
        x=alt.X("error_after_fix:Q", axis=alt.Axis(format="%"), title="dev error"),
        y=after_fix_y,
        tooltip=["category", alt.Tooltip("error_after_fix:Q", format=".1%")],
    )
)
removed = (
    alt.Chart(fixable)
    .mark_bar()
    .encode(
        x="error_after_fix:Q",
        x2="dev_error:Q",
        y=after_fix_y,
        color=alt.Color("category:N", scale=colours, legend=None),
        tooltip=["category", alt.Tooltip("ceiling:Q", format=".1%", title="ceiling")],
    )
)
st.altair_chart(
    (left_after_fix + removed + _interval(fixable, "best", "worst", fixable_order)).properties(
        title=f"Dev error {top.dev_error:.1%}: grey is left after a perfect fix, colour is "
        "removed (bar: 95% interval of the error after fix)"
    ),
    width="stretch",
    key="after_fix_chart",
)

# --- effort: the second ranking ---------------------------------------------------------------
st.subheader("Ranking by ceiling per effort")
st.caption(
    "Estimate the days it takes to fix each category; the method gives no rigid formula, so "
    "this is a second view next to the share, not a verdict. A point is 1% of the dev set: a "
    "ceiling of 2.0% that takes 4 days is 0.50 points of dev error per day."
)


def _save_effort(session, *, category_id: int, key: str) -> None:
    value = st.session_state.get(key)
    if value:
        update_category(
            session, category_id=category_id, effort=float(value), user=reviewer() or None
        )
    else:
        update_category(
            session, category_id=category_id, clear_effort=True, user=reviewer() or None
        )


live = [c for c in categories if not c.archived]
effort_columns = st.columns(min(4, max(1, len(live))))
for index, category in enumerate(live):
    key = f"effort_{category.id}"
    effort_columns[index % len(effort_columns)].number_input(
        f"Days to fix {plain(category.name)}",
        min_value=0.0,
        value=category.effort,
        step=0.5,
        key=key,
        help="The effort to fix it, in days. Leave empty (or 0) for no estimate.",
        on_change=action,
        args=(_save_effort,),
        kwargs={"category_id": category.id, "key": key},
    )
ranking = report.rank_by_effort(table, {c.name: c.effort for c in categories})
if ranking.empty:
    st.caption("No category has an effort estimate yet.")
else:
    st.dataframe(
        _percentages(ranking, ("share", "ceiling")).format(_points, subset=["ceiling_per_effort"]),
        key="effort_ranking",
        hide_index=True,
        width="stretch",
        column_config={
            "share": st.column_config.Column("share of errors"),
            "ceiling": st.column_config.Column("ceiling"),
            "effort": st.column_config.Column("days"),
            "ceiling_per_effort": st.column_config.Column(
                "points of dev error per day",
                help="The ceiling in points (1 point = 1% of the dev set) over the days to fix",
            ),
        },
    )

# --- where the error comes from: bias, variance, data mismatch -------------------------------
st.subheader("Where the error comes from")
with transaction() as session:
    by_split = splits.error_by_split(session, project_id=project.id, run_id=run_id)
    human_level = session.get(Project, project.id).human_level_error
st.columns([1, 2])[0].number_input(
    "Human-level error (%)",
    min_value=0.0,
    max_value=100.0,
    value=None if human_level is None else human_level * 100,
    step=0.1,
    format="%.1f",
    key="human_level_error",
    placeholder="e.g. 1.0",
    help="How often a person gets these examples wrong: a proxy for the best possible error. "
    "Saved for the project.",
    on_change=lambda: action(
        splits.set_human_level_error,
        project_id=project.id,
        user=reviewer(),
        error=None
        if st.session_state["human_level_error"] is None
        else st.session_state["human_level_error"] / 100,
    ),
)
gaps = splits.error_gaps(by_split, human_level_error=human_level)
if len(by_split) < 2 and human_level is None:
    st.caption(
        "Import predictions for the train, train-dev and test splits too (the `split` column) "
        "to compare avoidable bias, variance, data mismatch and overfitting to the dev set."
    )
levels = [{"level": splits.HUMAN_LEVEL, "error": human_level}] if human_level is not None else []
levels += [{"level": r.split, "error": r.error} for r in by_split.itertuples(index=False)]
if len(levels) > 1:
    st.altair_chart(
        alt.Chart(pd.DataFrame(levels))
        .mark_bar()
        .encode(
            x=alt.X("error:Q", title="error", axis=alt.Axis(format="%")),
            y=alt.Y("level:N", sort=None, title=None),
            tooltip=["level", alt.Tooltip("error:Q", format=".1%")],
        )
        .properties(height=60 + 36 * len(levels)),
        key="splits_chart",
    )
if not gaps.empty:
    if sentence := splits.largest_gap_sentence(gaps):
        st.info(sentence)
    st.dataframe(
        _percentages(gaps, ("size",)),
        key="gaps_table",
        hide_index=True,
        column_config={
            "size": st.column_config.Column("size"),
            "from_split": "from",
            "to_split": "to",
        },
    )

# --- eyeball and blackbox dev sets ---------------------------------------------------------------
st.subheader("Eyeball and blackbox dev sets")
with transaction() as session:
    split = eyeball.eyeball_split(session, project_id=project.id, run_id=run_id)
dev_examples = split.eyeball_examples + split.blackbox_examples
dev_errors = split.eyeball_errors + split.blackbox_errors
suggested = eyeball.suggested_fraction(
    dev_examples=dev_examples, dev_error=dev_errors / dev_examples if dev_examples else 0.0
)
st.caption(
    "With a large dev set, review only the errors of a random eyeball part and keep the rest "
    "(the blackbox part) for measuring error. "
    + (
        f"About {eyeball.ERRORS_TO_LOOK_AT} errors to look at need an eyeball share of about "
        f"{suggested:.1%} here."
        if suggested is not None
        else ""
    )
)


def _save_eyeball_share(session) -> None:
    share = st.session_state["eyeball_share"]
    eyeball.set_eyeball_fraction(
        session,
        project_id=project.id,
        fraction=None if share is None else share / 100,
        user=reviewer() or None,
    )


st.columns([1, 2])[0].number_input(
    "Eyeball share of the dev set (%)",
    min_value=0.1,
    max_value=100.0,
    value=None if split.fraction is None else split.fraction * 100,
    step=1.0,
    key="eyeball_share",
    placeholder="all of it",
    help="Reviewers see only the errors of this random part. Raising it later moves fresh "
    "examples over from the blackbox part. Empty or 100: the whole dev set.",
    on_change=action,
    args=(_save_eyeball_share,),
)

if split.fraction is not None:
    parts = st.columns(2)
    parts[0].metric(
        "Eyeball dev error",
        f"{split.eyeball_error:.1%}",
        help=f"{split.eyeball_errors} of {split.eyeball_examples} examples",
    )
    parts[1].metric(
        "Blackbox dev error",
        f"{split.blackbox_error:.1%}",
        help=f"{split.blackbox_errors} of {split.blackbox_examples} examples",
    )
    if split.warning:
        st.warning(split.warning)


def _save_overlap_share(session) -> None:
    share = st.session_state["overlap_share"]
    double_review.set_overlap_fraction(
        session,
        project_id=project.id,
        fraction=None if share is None else share / 100,
        user=reviewer() or None,
    )


st.subheader("Double review")
overlap = project.overlap_fraction
st.columns([1, 2])[0].number_input(
    "Double-review share of the random queue (%)",
    min_value=0.0,
    max_value=100.0,
    value=None if overlap is None else overlap * 100,
    step=5.0,
    key="overlap_share",
    placeholder="none: one reviewer each",
    help="This random part of the errors is reviewed by two reviewers, each blind to the "
    "other's tags until both are done; their agreement is measured below and a lead settles "
    "their disagreements (Adjudicate). Raising it later adds errors without taking any out. "
    "Empty or 0: one reviewer each.",
    on_change=action,
    args=(_save_overlap_share,),
)

# --- how good the suggestions are -------------------------------------------------------------
st.subheader("How good the suggestions are")
with transaction() as session:
    # Kept per data version like the report's numbers (analyze gives a new one).
    quality = report_cache.kept(
        session,
        project_id=project.id,
        key=("suggester_quality", run_id),
        compute=lambda: (
            signals.suggester_quality(session, project_id=project.id, run_id=run_id)
            if signals.analysed(session, run_id=run_id)
            else []
        ),
    )
if not quality:
    st.caption(
        "No suggestions for this run: `labeltool analyze --project NAME` finds likely label "
        "errors, blurry, dark or odd images and near-duplicates, suggested as the project's "
        "categories of the same name (and the one marking incorrect labels)."
    )
else:
    st.caption(
        "Judged by the reviewers' own tags on the reviewed errors: precision is the share of "
        "the errors a suggester spoke about that reviewers tagged with its category; recall, "
        "the share of the errors tagged with the category that it had suggested."
    )
    st.dataframe(
        _percentages(
            pd.DataFrame(
                [
                    {
                        "suggester": q.kind,
                        "category": q.category,
                        "suggested": q.suggested,
                        "confirmed": q.confirmed,
                        "precision": q.precision,
                        "tagged": q.tagged,
                        "recall": q.recall,
                    }
                    for q in quality
                ]
            ),
            ["precision", "recall"],
        ),
        key="suggester_quality",
        hide_index=True,
    )

# --- do reviewers agree? ----------------------------------------------------------------------
st.subheader("Do reviewers agree?")
with transaction() as session:
    progress = report_cache.kept(
        session,
        project_id=project.id,
        key=("double_review_status", run_id),
        compute=lambda: double_review.status(session, project_id=project.id, run_id=run_id),
    )
st.caption(f"👥 Double review: {plain(progress.sentence)}.")
with transaction() as session:
    # Kept per data version like the table above: a tag or a review gives a new one.
    agreeing = report_cache.kept(
        session,
        project_id=project.id,
        key=("agreement", run_id),
        compute=lambda: agreement.to_frame(
            agreement.agreement(session, project_id=project.id, run_id=run_id)
        ),
    )
    no_agreement = (
        report_cache.kept(
            session,
            project_id=project.id,
            key=("agreement_empty", run_id),
            compute=lambda: agreement.why_empty(session, project_id=project.id, run_id=run_id),
        )
        if agreeing.empty
        else None
    )
if no_agreement is not None:
    st.caption(no_agreement)
else:
    st.caption(
        "On the errors two or more reviewers reviewed, whether they put them in the same "
        "categories: Cohen's kappa for two reviewers, Krippendorff's alpha for more; 1 is "
        "perfect agreement, 0 no better than chance. A reviewer's review before a category was "
        "added says nothing about it. Intervals are 95% (bootstrap over the errors); the "
        "reading is Landis & Koch's. Low agreement means the category needs a sharper "
        "description before its share can be trusted."
    )
    st.dataframe(
        pd.DataFrame(
            {
                "category": agreeing["category"],
                "errors": agreeing["examples"],
                "reviewers": agreeing["reviewers"],
                "statistic": agreeing["statistic"],
                "agreement": agreeing["coefficient"],
                "95% interval": [
                    "–" if pd.isna(low) else f"{low:.2f} to {high:.2f}"
                    for low, high in zip(agreeing["ci_low"], agreeing["ci_high"], strict=True)
                ],
                "reading": agreeing["reading"].fillna(agreeing["reason"]),
            }
        ),
        column_config={"agreement": st.column_config.NumberColumn(format="%.2f")},
        key="reviewer_agreement",
        hide_index=True,
    )

# --- reviewers and downloads ------------------------------------------------------------------
st.subheader("Reviewers")
if reviewers.empty:
    st.caption("Nobody has reviewed an error yet.")
else:
    st.dataframe(reviewers, key="reviewer_counts", hide_index=True)

st.subheader("Download")
st.caption(
    "Each file is built from the database when you click it, so it is as of that moment. "
    "The wide spreadsheet can be edited and read back with `labeltool import-tags`."
)
fixed = {name.casefold() for name in FIXED_COLUMNS}
clashing = [c.name for c in categories if c.name.casefold() in fixed]
builders = {
    "wide": lambda session: wide_table(session, project_id=project.id, run_id=run_id),
    "long": lambda session: long_table(session, project_id=project.id, run_id=run_id),
    "report": lambda session: table,  # as this view counts (its file name says how)
    "corrections": lambda session: corrections_table(session, project_id=project.id, run_id=run_id),
}
labels = {
    "wide": "Spreadsheet (wide)",
    "long": "Tags (long)",
    "report": "Report (this view)",
    "corrections": "Corrected labels",
}
# Named for the run when there are several, so two runs' downloads do not overwrite each other.
file_stem = project.name if len(project.runs) < 2 else f"{project.name}-run-{project.run.name}"
for column, (name, build) in zip(st.columns(len(builders)), builders.items(), strict=True):
    if name == "wide" and clashing:  # wide_table would refuse: say so before the click
        column.error(
            f"Category '{plain(clashing[0])}' has the name of a fixed column of the wide "
            "table; rename it to export."
        )
        continue
    column.download_button(
        labels[name],
        data=_csv_when_clicked(database(), build),
        file_name=f"{file_stem}-{name}-{counting}.csv"
        if name == "report"
        else f"{file_stem}-{name}.csv",
        mime="text/csv",
        key=f"download_{name}",
        on_click="ignore",
        help="Formula-like cells are prefixed with ' for spreadsheets.",
    )
