"""Ceiling report: each error category's share of the reviewed errors, its ceiling (the most
the dev error can fall if it is fixed), the ranking by effort, and the tables to download."""

import altair as alt
import pandas as pd
import streamlit as st

from app_pages.common import ProjectInfo, action, require_project, show_flash, transaction
from app_pages.text import plain
from labeltool import eyeball, report, review_queue, splits
from labeltool.categories import list_categories, update_category
from labeltool.errors import LabeltoolError
from labeltool.export import corrections_table, long_table, to_csv, wide_table
from labeltool.models import Project, confusion_pair_name

project: ProjectInfo = require_project()
show_flash()

st.header("Ceiling report")
st.caption(
    "Share of errors: the reviewed errors put in a category (an error can be in several, so "
    "shares need not add up to 100%). Ceiling: share × dev error, the most the dev error can "
    "fall if the category is fixed perfectly. Intervals are Wilson 95%."
)

# --- slices ---------------------------------------------------------------------------------
with transaction() as session:
    reviewers = report.reviewer_counts(session, project_id=project.id)
    pairs = review_queue.confusion_pairs(session, project_id=project.id)
pair_errors = {(r.label, r.prediction): r.errors for r in pairs.itertuples(index=False)}
left, right = st.columns(2)
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
scope = {"project_id": project.id, "reviewer": who, "confusion_pair": pair}

with transaction() as session:
    top = report.headline(session, **scope)
    table = report.ceiling_table(session, **scope)
    ranking = report.effort_ranking(session, **scope)
    accounting = report.incorrect_label_accounting(session, **scope)
    categories = list_categories(session, project_id=project.id, include_archived=True)

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
if accounting is not None:
    st.info(f"**Incorrectly labeled:** {plain(accounting.sentence)}. {plain(accounting.hint)}")

# --- the ceiling table and its charts ---------------------------------------------------------
archived = set(table.attrs.get("archived", ()))
shown = table.copy()
shown["category"] = [f"{n} (archived)" if n in archived else n for n in shown["category"]]
st.subheader("Categories by share of errors")
st.dataframe(
    shown,
    key="ceiling_table",
    hide_index=True,
    width="stretch",
    column_config={
        "errors": st.column_config.NumberColumn("errors", help="Reviewed errors in the category"),
        "share": st.column_config.NumberColumn("share of errors", format="percent"),
        "ci_low": st.column_config.NumberColumn("95% low", format="percent"),
        "ci_high": st.column_config.NumberColumn("95% high", format="percent"),
        "ceiling": st.column_config.NumberColumn(
            "ceiling", format="percent", help="The most the dev error can fall if it is fixed"
        ),
        "error_after_fix": st.column_config.NumberColumn("error after fix", format="percent"),
    },
)

order = shown["category"].tolist()
share_axis = alt.X("share:Q", title="share of reviewed errors", axis=alt.Axis(format="%"))
bars = (
    alt.Chart(shown)
    .mark_bar()
    .encode(
        x=share_axis.scale(domain=[0, 1]),
        y=alt.Y("category:N", sort=order, title=None),
        tooltip=[
            "category",
            "errors",
            alt.Tooltip("share:Q", format=".1%"),
            alt.Tooltip("ci_low:Q", title="95% low", format=".1%"),
            alt.Tooltip("ci_high:Q", title="95% high", format=".1%"),
        ],
    )
)
intervals = (
    alt.Chart(shown)
    .mark_rule(color="black")
    .encode(x="ci_low:Q", x2="ci_high:Q", y=alt.Y("category:N", sort=order))
)
st.altair_chart(
    (bars + intervals).properties(title="Share of errors with Wilson 95% intervals"),
    width="stretch",
    key="share_chart",
)

parts = shown.melt(
    id_vars="category",
    value_vars=["error_after_fix", "ceiling"],
    var_name="part",
    value_name="dev error",
)
parts["part"] = parts["part"].map(
    {"error_after_fix": "error after fix", "ceiling": "removed by the fix (ceiling)"}
)
# The ceiling is share x dev error, so it inherits the share's interval: the best-case error
# after the fix lies between dev error x (1 - ci_high) and dev error x (1 - ci_low).
after_fix_range = shown.assign(
    best=top.dev_error * (1 - shown["ci_high"]), worst=top.dev_error * (1 - shown["ci_low"])
)
after_fix_bars = (
    alt.Chart(parts)
    .mark_bar()
    .encode(
        x=alt.X("dev error:Q", stack="zero", axis=alt.Axis(format="%"), title="dev error"),
        y=alt.Y("category:N", sort=order, title=None),
        color=alt.Color(
            "part:N",
            sort=["error after fix", "removed by the fix (ceiling)"],
            legend=alt.Legend(orient="bottom", title=None),
        ),
        tooltip=["category", "part", alt.Tooltip("dev error:Q", format=".2%")],
    )
)
after_fix_interval = (
    alt.Chart(after_fix_range)
    .mark_rule(color="black")
    .encode(
        x=alt.X("best:Q", title="dev error"),
        x2="worst:Q",
        y=alt.Y("category:N", sort=order),
        tooltip=[
            "category",
            alt.Tooltip("best:Q", format=".2%", title="error after fix, 95% low"),
            alt.Tooltip("worst:Q", format=".2%", title="error after fix, 95% high"),
        ],
    )
)
st.altair_chart(
    (after_fix_bars + after_fix_interval).properties(
        title=f"Dev error {top.dev_error:.1%}: before and at best after each fix "
        "(line: 95% interval)"
    ),
    width="stretch",
    key="after_fix_chart",
)

# --- effort: the second ranking ---------------------------------------------------------------
st.subheader("Ranking by ceiling per effort")
st.caption(
    "Estimate the effort to fix each category (e.g. days); the method gives no rigid formula, "
    "so this is a second view next to the share, not a verdict."
)


def _save_effort(session, *, category_id: int, key: str) -> None:
    value = st.session_state.get(key)
    if value:
        update_category(session, category_id=category_id, effort=float(value))
    else:
        update_category(session, category_id=category_id, clear_effort=True)


live = [c for c in categories if not c.archived]
effort_columns = st.columns(min(4, max(1, len(live))))
for index, category in enumerate(live):
    key = f"effort_{category.id}"
    effort_columns[index % len(effort_columns)].number_input(
        f"Effort for {plain(category.name)}",
        min_value=0.0,
        value=category.effort,
        step=0.5,
        key=key,
        help="Leave empty (or 0) for no estimate.",
        on_change=action,
        args=(_save_effort,),
        kwargs={"category_id": category.id, "key": key},
    )
if ranking.empty:
    st.caption("No category has an effort estimate yet.")
else:
    st.dataframe(
        ranking,
        key="effort_ranking",
        hide_index=True,
        width="stretch",
        column_config={
            "share": st.column_config.NumberColumn("share of errors", format="percent"),
            "ceiling": st.column_config.NumberColumn("ceiling", format="percent"),
            "ceiling_per_effort": st.column_config.NumberColumn(
                "ceiling per effort", format="%.4f", help="Dev error removed at most per unit"
            ),
        },
    )

# --- where the error comes from: bias, variance, data mismatch -------------------------------
st.subheader("Where the error comes from")
with transaction() as session:
    by_split = splits.error_by_split(session, project_id=project.id)
    human_level = session.get(Project, project.id).human_level_error
st.columns([1, 2])[0].number_input(
    "Human-level error (%)",
    min_value=0.0,
    max_value=100.0,
    value=None if human_level is None else human_level * 100,
    step=0.1,
    key="human_level_error",
    placeholder="e.g. 1.0",
    help="How often a person gets these examples wrong: a proxy for the best possible error. "
    "Saved for the project.",
    on_change=lambda: action(
        splits.set_human_level_error,
        project_id=project.id,
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
        gaps,
        key="gaps_table",
        hide_index=True,
        column_config={
            "size": st.column_config.NumberColumn("size", format="percent"),
            "from_split": "from",
            "to_split": "to",
        },
    )

# --- eyeball and blackbox dev sets ---------------------------------------------------------------
st.subheader("Eyeball and blackbox dev sets")
with transaction() as session:
    split = eyeball.eyeball_split(session, project_id=project.id)
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
        f"{suggested:.0%} here."
        if suggested is not None
        else ""
    )
)


def _save_eyeball_share(session) -> None:
    share = st.session_state["eyeball_share"]
    eyeball.set_eyeball_fraction(
        session, project_id=project.id, fraction=None if share is None else share / 100
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

# --- reviewers and downloads ------------------------------------------------------------------
st.subheader("Reviewers")
if reviewers.empty:
    st.caption("Nobody has reviewed an error yet.")
else:
    st.dataframe(reviewers, key="reviewer_counts", hide_index=True)

st.subheader("Download")
builders = {
    "wide": lambda session: wide_table(session, project_id=project.id),
    "long": lambda session: long_table(session, project_id=project.id),
    "report": lambda session: table,
    "corrections": lambda session: corrections_table(session, project_id=project.id),
}
labels = {
    "wide": "Spreadsheet (wide)",
    "long": "Tags (long)",
    "report": "Report (this view)",
    "corrections": "Corrected labels",
}
buttons = st.columns(len(builders))
with transaction() as session:
    for column, (name, build) in zip(buttons, builders.items(), strict=True):
        try:
            frame = build(session)
        except LabeltoolError as exc:  # e.g. a category named like a fixed column
            column.error(str(exc))
            continue
        column.download_button(
            labels[name],
            data=to_csv(frame).encode("utf-8"),
            file_name=f"{project.name}-{name}.csv",
            mime="text/csv",
            key=f"download_{name}",
            help=f"{len(frame)} rows; formula-like cells are prefixed with ' for spreadsheets",
        )
st.caption("The wide spreadsheet can be edited and read back with `labeltool import-tags`.")
