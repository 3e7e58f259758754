"""Projects: each project's dev error at a glance, importing a predictions file, who may do
what in a project (its members), and deleting one.

The page reads files of this machine only inside the operator's import folder
($LABELTOOL_IMPORT_ROOT, see labeltool.import_folder); without one it imports nothing. The
reviewer of the sidebar acts: once a project has members, importing into it, deleting it and
assigning roles need its lead (labeltool.roles), and a refusal says so.
"""

import tempfile
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages.common import (
    SELECT_PROJECT_KEY,
    action,
    database,
    flash,
    reviewer,
    show_flash,
    transaction,
)
from app_pages.text import plain
from labeltool.config import IMPORT_ROOT_ENV_VAR, database_file, import_root
from labeltool.errors import LabeltoolError
from labeltool.import_folder import images_folder, predictions_file
from labeltool.importing import import_predictions
from labeltool.projects import delete_project, dev_error_rate, get_project, list_projects
from labeltool.roles import Role, members, remove_member, set_role

#: The image checks the importer offers, as the page words them.
CHECK_CHOICES = {"exists": "File exists", "open": "Opens as an image", "none": "Don't check"}


def import_progress(bar):
    """A progress(done, total) callback drawing rows read and rows per second on `bar`."""
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        rate = done / max(time.monotonic() - started, 1e-6)
        bar.progress(
            min(1.0, done / total) if total else 1.0,
            text=f"Imported {done:,} of about {total:,} rows ({rate:,.0f} rows/s)",
        )

    return progress


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
    st.dataframe(  # dev error as a percentage with one decimal, as on every page
        pd.DataFrame(rows).style.format("{:.1%}", subset=["dev error"]),
        hide_index=True,
        key="projects_table",
    )

st.subheader("Import predictions")
root = import_root()
if root is None:
    st.info(
        "Importing from the browser is off on this server: predictions name image files on this "
        "machine, and the web page reads files of this machine only inside an import folder "
        f"that the operator sets with `{IMPORT_ROOT_ENV_VAR}`. On the machine itself, import "
        "with `labeltool import predictions.csv --project NAME --images-root DIR`.",
        icon="ℹ️",
    )
else:
    st.caption(
        "A CSV or Parquet file with columns `example_id, image, label, prediction` and optional "
        "`confidence`, `prob_<class>`, `split`. Upload it, or give its path in the import "
        f"folder `{root}`. Image paths are relative to the images root, a folder inside the "
        "import folder. Re-importing updates changed predictions."
    )
    with st.form("import_form"):
        name = st.text_input("Project name", key="import_project")
        upload = st.file_uploader("Predictions file", type=["csv", "parquet"], key="import_upload")
        server_path = st.text_input(
            "…or its path in the import folder",
            key="import_path",
            help=f"Relative to {root} (or an absolute path inside it)",
        )
        images_root = st.text_input(
            "Images root (a folder in the import folder)",
            key="import_root",
            help="Relative to the import folder. Default: the predictions file's folder; for an "
            "upload, the import folder itself",
        )
        check = st.segmented_control(
            "Check each image",
            CHECK_CHOICES,
            default="exists",
            format_func=CHECK_CHOICES.get,
            key="import_check",
            help="Before anything is written, each distinct image is looked at once: that its "
            "file is there, or also that Pillow reads it as an image (slower on many images), "
            "or not at all.",
        )
        submitted = st.form_submit_button("Import", type="primary")

    if submitted:
        try:
            if not name.strip():
                raise LabeltoolError("give the project a name")
            if upload is None and not server_path.strip():
                raise LabeltoolError(
                    "choose a predictions file or give its path in the import folder"
                )
            if "://" in images_root:
                # The server's own credentials would reach that URL for whoever uses the page.
                raise LabeltoolError(
                    "the web page imports images only from the import folder; import a project "
                    "whose images are at a URL on the server itself: `labeltool import "
                    "predictions.csv --project NAME --images-root s3://bucket/prefix`"
                )
            with tempfile.TemporaryDirectory() as folder:
                if upload is None:
                    # Checked before a byte is read: inside the import folder, not the database.
                    path = predictions_file(
                        server_path, root=root, database_file=database_file(database().url)
                    )
                    images = (
                        images_folder(images_root, root=root)
                        if images_root.strip()
                        else path.parent
                    )
                else:
                    images = images_folder(images_root, root=root)
                    # The client names the upload: keep its last part, so it stays in the folder.
                    upload_name = Path(upload.name.replace("\\", "/")).name
                    if upload_name in ("", ".", ".."):
                        upload_name = "predictions.csv"
                    path = Path(folder) / upload_name
                    path.write_bytes(upload.getvalue())
                bar = st.progress(0.0, text="Reading the file…")
                with transaction() as session:
                    summary = import_predictions(
                        session,
                        path,
                        project=name.strip(),
                        images_root=images,
                        check_images=check or "exists",
                        progress=import_progress(bar),
                        user=reviewer() or None,
                    )
            bar.empty()
            st.session_state[SELECT_PROJECT_KEY] = summary.project
            st.session_state["_flash"] = ("success", str(summary))
            st.rerun()
        except LabeltoolError as exc:
            st.error(plain(str(exc)))


def _set_member_role(session) -> None:
    project_id = get_project(session, st.session_state["members_project"]).id
    member = set_role(
        session,
        project_id=project_id,
        user=st.session_state["member_user"],
        role=st.session_state["member_role"],
        by=reviewer() or None,
    )
    flash(
        "success",
        f"{member.user} is now a {member.role} of '{st.session_state['members_project']}'",
    )


def _remove_member(session) -> None:
    name = st.session_state["members_project"]
    user = st.session_state["member_user"]
    remove_member(
        session, project_id=get_project(session, name).id, user=user, by=reviewer() or None
    )
    flash("success", f"{' '.join(user.split())} is no longer a member of '{name}'")


if rows:
    with st.expander("Members"):
        st.caption(
            "A **lead** changes the categories, their effort, the eyeball share and the runs, "
            "deletes the project and gives roles; a **reviewer** tags, comments and corrects "
            "labels; a **viewer** reads the report and exports. A project without members is "
            "open to anyone; its first member is its lead. You act as the Reviewer of the sidebar."
        )
        chosen = st.selectbox("Project", [r["project"] for r in rows], key="members_project")
        with transaction() as session:
            found = members(session, project_id=get_project(session, chosen).id)
        if found:
            st.dataframe(
                pd.DataFrame(
                    [{"user": m.user, "role": m.role.value, "added": m.added_at} for m in found]
                ),
                hide_index=True,
                key="members_table",
            )
        else:
            st.info(f"'{plain(chosen)}' has no members: anyone may do anything in it.")
        left, middle = st.columns(2)
        left.text_input("Name", key="member_user", placeholder="the name they review under")
        middle.selectbox("Role", [role.value for role in reversed(Role)], key="member_role")
        named = bool(st.session_state.get("member_user", "").strip())
        buttons = st.columns(2)
        buttons[0].button(
            "Set role",
            key="member_set",
            disabled=not named,
            on_click=action,
            args=(_set_member_role,),
        )
        buttons[1].button(
            "Remove",
            key="member_remove",
            disabled=not named,
            on_click=action,
            args=(_remove_member,),
        )

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
                    held = delete_project(session, doomed, user=reviewer() or None)
            except LabeltoolError as exc:
                st.error(plain(str(exc)))
            else:
                st.session_state["_flash"] = (
                    "success",
                    f"Deleted project '{doomed}' ({held.dev_examples} dev examples)",
                )
                st.rerun()
