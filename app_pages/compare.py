"""Compare runs: did the fix work? Two runs' dev error side by side, the errors fixed, new and
kept, each category's share and ceiling in both, what the new run recovered of the category it
set out to fix, and a chart of the dev error and the top categories across all runs."""

import dataclasses
import shlex

import altair as alt
import pandas as pd
import streamlit as st

from app_pages.common import ProjectInfo, database, require_project, show_flash, transaction
from app_pages.text import plain
from labeltool import compare, report
from labeltool.errors import LabeltoolError
from labeltool.export import to_csv

#: The chart's colour for the dev error line; categories get their own colours.
DEV_ERROR_COLOUR = "#333333"
#: The number of categories drawn across runs beside the dev error.
TOP_CATEGORIES = 3
#: The queue change the Gallery opens for each count (review_queue.CHANGES).
GALLERY_CHANGE = {"fixed": "fixed", "new": "new", "both": "still wrong"}

project: ProjectInfo = require_project()
show_flash()
st.header("Compare runs")
st.caption(
    "Each run is one model's predictions over the same dev set. Errors are matched by "
    "example id; intervals are Wilson 95%. A category's numbers are each run's ceiling report "
    "(its reviewed errors), so review a sample of the new run's errors before reading its "
    "ceilings: image tags such as blurry carry over, error tags do not."
)

if len(project.runs) < 2:
    st.info(
        "This project has one run. Import another model's predictions as a second run to "
        "compare them:"
    )
    # Code, shown as written (a project name is not Markdown here), quoted for the shell.
    st.code(
        f"labeltool import PREDICTIONS --project {shlex.quote(project.name)} --run NAME "
        '--note "what changed"',
        language="bash",
    )
    st.stop()

# --- which runs ----------------------------------------------------------------------------
names = [r.name for r in project.runs]
labels = {r.name: r.label for r in project.runs}
after_default = project.run.name if project.run else names[-1]
before_default = project.previous_run.name if project.previous_run else names[0]
if after_default == before_default:  # the first run is shown: compare it with the next
    after_default = names[1]
left, middle, right = st.columns([2, 2, 2])
before = left.selectbox(
    "Earlier run",
    names,
    index=names.index(before_default),
    format_func=labels.__getitem__,
    key=f"compare_before_{project.id}",
)
after = middle.selectbox(
    "Later run",
    names,
    index=names.index(after_default),
    format_func=labels.__getitem__,
    key=f"compare_after_{project.id}",
)
if before == after:
    st.warning("Choose two different runs.")
    st.stop()

with transaction() as session:
    baseline = compare.compare_runs(session, project_id=project.id, before=before, after=after)
targets = [None, *baseline.categories["category"]]
recorded = baseline.target.category if baseline.target else None
target = right.selectbox(
    "Category the later run set out to fix",
    targets,
    index=targets.index(recorded) if recorded in targets else 0,
    format_func=lambda name: "none" if name is None else name,
    key=f"compare_target_{project.id}_{after}",
    help="Recorded with the run (`labeltool import … --target CATEGORY`); choose another to "
    "see what the later run recovered of it.",
)
if target == recorded:
    result = baseline
elif target is None:  # "none" although the run recorded a target
    result = dataclasses.replace(baseline, target=None)
else:
    try:
        with transaction() as session:
            result = compare.compare_runs(
                session, project_id=project.id, before=before, after=after, target=target
            )
    except LabeltoolError as exc:
        st.error(plain(str(exc)))
        st.stop()

# --- dev error and the errors that moved -----------------------------------------------------
metrics = st.columns(5)
for column, summary in zip(metrics[:2], (result.before, result.after), strict=True):
    column.metric(
        f"Dev error, run {plain(summary.name)}",
        f"{summary.dev_error:.1%}",
        delta=None if summary is result.before else f"{result.dev_error_change * 100:+.1f} points",
        delta_color="inverse",  # a fall in the error is good news
        help=f"{summary.misclassified:,} of {summary.dev_examples:,} dev examples; 95% "
        f"interval {summary.dev_error_low:.1%} – {summary.dev_error_high:.1%}",
    )
counts = {"fixed": result.fixed, "new": result.new, "both": result.both}
words = {
    "fixed": ("Errors fixed", f"wrong in run {plain(before)}, right in run {plain(after)}"),
    "new": ("New errors", f"right in run {plain(before)}, wrong in run {plain(after)}"),
    "both": ("Wrong in both", "misclassified by both runs"),
}
for column, (kind, count) in zip(metrics[2:], counts.items(), strict=True):
    title, help_text = words[kind]
    column.metric(title, f"{count:,}", help=help_text)
if result.unmatched_before or result.unmatched_after:
    st.warning(
        f"{result.unmatched_before:,} dev examples are only in run {plain(before)} and "
        f"{result.unmatched_after:,} only in run {plain(after)}: they are left out of the "
        "errors fixed, new and in both."
    )

# Look at them: the Gallery shows the queue of the run picked in the sidebar against the run
# before it, so the links are offered when that is the pair compared here.
adjacent = project.run is not None and project.run.name == after
adjacent = adjacent and project.previous_run is not None and project.previous_run.name == before


def _open_gallery(change: str) -> None:
    st.session_state["q_change"] = change
    st.session_state["q_states"] = []
    st.session_state["_compare_to_gallery"] = True


if adjacent:
    links = st.columns(3)
    for column, kind in zip(links, counts, strict=True):
        column.button(
            f"See the {words[kind][0].lower()} in the Gallery",
            key=f"gallery_{kind}",
            disabled=not counts[kind],
            on_click=_open_gallery,
            args=(GALLERY_CHANGE[kind],),
        )
else:
    st.caption(
        f"To look at these errors, pick run {plain(after)} in the sidebar and compare it with "
        "the run before it."
    )
if st.session_state.pop("_compare_to_gallery", False):
    st.switch_page("app_pages/gallery.py")

# --- what the fix bought ----------------------------------------------------------------------
with transaction() as session:
    later = report.headline(
        session,
        project_id=project.id,
        run_id=next(r.id for r in project.runs if r.name == after),
    )
if later.carried_warning:
    st.warning(f"Run {plain(after)}: {later.carried_warning}.")
if result.target is not None:
    st.info(f"🎯 {plain(result.target.sentence)}.")
elif project.run is not None:
    st.caption(
        "No category is recorded as this run's target: choose one above to see what the later "
        "run recovered of it."
    )

# --- categories side by side -----------------------------------------------------------------
st.subheader("Categories in both runs")
table = result.categories
if table.empty:
    st.caption("No category has reviewed errors in either run yet.")
else:
    fractions = ["share_before", "ceiling_before", "share_after", "ceiling_after"]
    st.dataframe(
        table.style.format("{:.1%}", subset=fractions, na_rep="–").format(
            "{:+.2%}", subset=["ceiling_change"], na_rep="–"
        ),
        key="compare_table",
        hide_index=True,
        width="stretch",
        column_config={
            "errors_before": st.column_config.Column(f"errors, run {before}"),
            "share_before": st.column_config.Column(f"share, run {before}"),
            "ceiling_before": st.column_config.Column(f"ceiling, run {before}"),
            "errors_after": st.column_config.Column(f"errors, run {after}"),
            "share_after": st.column_config.Column(f"share, run {after}"),
            "ceiling_after": st.column_config.Column(f"ceiling, run {after}"),
            "ceiling_change": st.column_config.Column(
                "ceiling change", help="Points of dev error: negative is a smaller ceiling"
            ),
        },
    )
    long = pd.concat(
        [
            table[["category", f"ceiling_{side}"]]
            .rename(columns={f"ceiling_{side}": "ceiling"})
            .assign(run=f"run {name}")
            for side, name in (("before", before), ("after", after))
        ]
    ).dropna(subset=["ceiling"])
    st.altair_chart(
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("ceiling:Q", title="ceiling (points of dev error)", axis=alt.Axis(format="%")),
            y=alt.Y("category:N", sort=list(table["category"]), title=None),
            yOffset=alt.YOffset("run:N", sort=[f"run {before}", f"run {after}"]),
            color=alt.Color("run:N", sort=[f"run {before}", f"run {after}"], title=None),
            tooltip=["category", "run", alt.Tooltip("ceiling:Q", format=".2%")],
        )
        .properties(title="Each category's ceiling in both runs"),
        width="stretch",
        key="compare_ceilings_chart",
    )

# --- across all runs -----------------------------------------------------------------------
st.subheader("Across all runs")
with transaction() as session:
    trend = compare.run_trend(session, project_id=project.id, top=TOP_CATEGORIES)
order = [f"{r.name}" for r in project.runs]
measures = [
    compare.DEV_ERROR,
    *dict.fromkeys(m for m in trend["measure"] if m != compare.DEV_ERROR),
]
base = alt.Chart(trend).encode(
    x=alt.X("run:N", sort=order, title="run", axis=alt.Axis(labelAngle=0)),
    color=alt.Color("measure:N", sort=measures, title=None),
)
y = alt.Y("value:Q", title="share of the dev set", axis=alt.Axis(format="%"))
st.altair_chart(
    alt.layer(
        base.mark_rule(strokeWidth=2, opacity=0.5).encode(
            y=alt.Y("low:Q", title=None), y2="high:Q"
        ),
        base.mark_line(point=True).encode(
            y=y,
            tooltip=[
                "run",
                "measure",
                alt.Tooltip("value:Q", format=".2%"),
                alt.Tooltip("low:Q", format=".2%", title="95% low"),
                alt.Tooltip("high:Q", format=".2%", title="95% high"),
            ],
        ),
    ).properties(
        title=f"Dev error and the ceilings of the top {TOP_CATEGORIES} categories, per run "
        "(bars: 95% intervals)"
    ),
    width="stretch",
    key="trend_chart",
)


def _comparison_csv() -> bytes:
    with database().begin() as session:
        fresh = compare.compare_runs(
            session, project_id=project.id, before=before, after=after, target=target
        )
    return to_csv(compare.comparison_table(fresh)).encode("utf-8")


st.download_button(
    "Download the comparison (CSV)",
    data=_comparison_csv,
    file_name=f"{project.name}-runs-{before}-vs-{after}.csv",
    mime="text/csv",
    key="download_comparison",
    on_click="ignore",
)
