"""Projects: each project's dev error at a glance, and importing a predictions file."""

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages.common import SELECT_PROJECT_KEY, show_flash, transaction
from labeltool.errors import LabeltoolError
from labeltool.importing import import_predictions
from labeltool.projects import delete_project, dev_error_rate, list_projects

st.header("Projects")
show_flash()

with transaction() as session:
    rows = []
    for project in list_projects(session):
        rate = dev_error_rate(session, project_id=project.id)
        rows.append(
            {
                "project": project.name,
                "dev examples": rate.dev_examples,
                "misclassified": rate.misclassified,
                "dev error": rate.dev_error,
                "images root": project.images_root,
                "created": project.created_at,
            }
        )
if rows:
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="projects_table",
        column_config={"dev error": st.column_config.NumberColumn(format="percent")},
    )

st.subheader("Import predictions")
st.caption(
    "A CSV or Parquet file with columns `example_id, image, label, prediction` and optional "
    "`confidence`, `prob_<class>`, `split`. Image paths are relative to the images root, a "
    "folder on the machine running labeltool. Re-importing updates changed predictions."
)
with st.form("import_form"):
    name = st.text_input("Project name", key="import_project")
    upload = st.file_uploader("Predictions file", type=["csv", "parquet"], key="import_upload")
    server_path = st.text_input("…or its path on this machine", key="import_path")
    images_root = st.text_input(
        "Images root (folder on this machine)",
        key="import_root",
        help="Default: the predictions file's folder",
    )
    submitted = st.form_submit_button("Import", type="primary")

if submitted:
    try:
        if not name.strip():
            raise LabeltoolError("give the project a name")
        if upload is None and not server_path.strip():
            raise LabeltoolError("choose a predictions file or give its path")
        if upload is not None and not images_root.strip():
            raise LabeltoolError("an uploaded file needs the images root folder")
        with tempfile.TemporaryDirectory() as folder:
            # The client names the upload: keep only its last part, so it stays in the folder.
            upload_name = Path(upload.name.replace("\\", "/")).name if upload else ""
            if upload_name in ("", ".", ".."):
                upload_name = "predictions.csv"
            path = Path(server_path.strip()) if upload is None else Path(folder) / upload_name
            if upload is not None:
                path.write_bytes(upload.getvalue())
            bar = st.progress(0.0, text="Checking every row…")
            with transaction() as session:
                summary = import_predictions(
                    session,
                    path,
                    project=name.strip(),
                    images_root=images_root.strip() or None,
                    progress=lambda done, total: bar.progress(
                        done / total if total else 1.0, text=f"Writing {done} of {total} rows"
                    ),
                )
        bar.empty()
        st.session_state[SELECT_PROJECT_KEY] = summary.project
        st.session_state["_flash"] = ("success", str(summary))
        st.rerun()
    except LabeltoolError as exc:
        st.error(str(exc))

if rows:
    with st.expander("Delete a project"):
        st.caption(
            "Deletes the project's examples, categories, tags and reviews. Export the wide "
            "spreadsheet first if you may want them back (`labeltool import-tags` reads it)."
        )
        doomed = st.selectbox("Project to delete", [r["project"] for r in rows], key="delete_name")
        typed = st.text_input("Type its name to confirm", key="delete_confirm")
        if st.button("Delete project", key="delete_project", disabled=typed != doomed):
            try:
                with transaction() as session:
                    held = delete_project(session, doomed)
            except LabeltoolError as exc:
                st.error(str(exc))
            else:
                st.session_state["_flash"] = (
                    "success",
                    f"Deleted project '{doomed}' ({held.dev_examples} dev examples)",
                )
                st.rerun()
