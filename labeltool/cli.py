"""The `labeltool` command: a thin shell over the same core functions the pages call.

Every subcommand opens the database given by `--db` (or $LABELTOOL_DB), applies pending
migrations, runs one transaction, and prints one line. User errors print one clear line on
stderr and exit 1, with no traceback. Commands act as the user named by `--as` (or
$LABELTOOL_USER): once a project has members, their roles say what that user may do in it
(labeltool.roles), exactly as on the pages.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from labeltool import __version__
from labeltool.audit import Kind
from labeltool.config import APP_PATH, DB_ENV_VAR, SPLITS, database_url
from labeltool.db import Database
from labeltool.errors import LabeltoolError
from labeltool.roles import USER_ENV_VAR, Role


@dataclass
class _State:
    url: str
    #: The user commands act as (--as or $LABELTOOL_USER), or None.
    user: str | None = None
    _db: Database | None = field(default=None, repr=False)

    def database(self) -> Database:
        if self._db is None:
            from sqlalchemy.exc import ArgumentError

            try:
                self._db = Database.open(self.url)
            except (ArgumentError, ImportError) as exc:
                # A malformed URL, or one naming a driver that is not installed.
                raise click.ClickException(
                    f"cannot use the database {_shown(self.url)!r}: {exc}"
                ) from None
        return self._db


class _Group(click.Group):
    """Turns our domain errors and database connection failures into one-line messages."""

    def invoke(self, ctx: click.Context):
        from sqlalchemy.exc import OperationalError

        try:
            return super().invoke(ctx)
        except LabeltoolError as exc:
            raise click.ClickException(str(exc)) from None
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise click.ClickException(
                f"cannot use the database {_shown(_state(ctx).url)!r}: {reason}"
            ) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    metavar="URL",
    envvar=DB_ENV_VAR,
    help="SQLAlchemy database URL [env: LABELTOOL_DB; default: sqlite:///labeltool.db]. "
    "Teams use postgresql+psycopg://user@host/dbname.",
)
@click.option(
    "--as",
    "acting_user",
    metavar="NAME",
    envvar=USER_ENV_VAR,
    help=f"Act as this user [env: {USER_ENV_VAR}]. Once a project has members (`labeltool "
    "members`), NAME's role in it says what the commands may change there.",
)
@click.version_option(__version__, prog_name="labeltool")
@click.pass_context
def cli(ctx: click.Context, db: str | None, acting_user: str | None) -> None:
    """Error analysis for image classifiers: tag misclassified dev examples with error
    categories and rank the categories by how much fixing each could lower the dev error."""
    ctx.obj = _State(url=database_url(db), user=" ".join((acting_user or "").split()) or None)


def _format_option(help: str):
    """The --format option of the commands that print a table, CSV or JSON."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["table", "csv", "json"]),
        default="table",
        show_default=True,
        help=help,
    )


#: The report's counting modes (labeltool.report.COUNTING), named here so that the CLI starts
#: without importing the report (tests/test_cli_double_review.py checks they agree).
_COUNTING = ("adjudicated", "consensus", "any")


def _counting_option():
    """The --counting option of the commands that print or export the report's numbers."""
    return click.option(
        "--counting",
        type=click.Choice(_COUNTING),
        default="adjudicated",
        show_default=True,
        help="How an error several reviewers reviewed counts under a category: adjudicated, "
        "the lead's decision where there is one (elsewhere any reviewer's tag); consensus, "
        "only when every reviewer who reviewed it tagged it; any, when anyone tagged it.",
    )


@cli.command("import")
@click.argument("predictions", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--project", required=True, help="Project name (created if new).")
@click.option(
    "--images-root",
    metavar="DIR|URL",
    help="Folder or URL the image paths are relative to: a local folder, s3://bucket/prefix, "
    "gs://…, az://… or https://…; credentials come from the environment (AWS_* variables or "
    "profiles), never from the URL [default: the predictions file's folder].",
)
@click.option(
    "--classes",
    metavar="A,B,...",
    help="Class names in the model's output order [default: the prob_ columns, "
    "else the labels seen].",
)
@click.option(
    "--categories",
    "categories_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV of error categories to create if missing (name[,description,shortcut,colour]).",
)
@click.option(
    "--check-images",
    type=click.Choice(["exists", "open", "none"]),
    default="exists",
    show_default=True,
    help="How closely each distinct image is checked before anything is written: exists "
    "(the file or object is there), open (also an image whose header Pillow reads), none.",
)
@click.option(
    "--allow-missing-images",
    is_flag=True,
    help="The same as --check-images none: import rows whose image is missing.",
)
@click.option(
    "--replace-classes",
    is_flag=True,
    help="Let the file's prob_ columns (or --classes) replace an existing project's class "
    "list. Without it, a file whose classes differ from the project's is refused (new "
    "classes may still be added after the project's own).",
)
@click.option(
    "--run",
    "run_name",
    help="The run (model version) the file holds: created if new, updated if it exists "
    "[default: the project's latest run; a first import creates run '1'].",
)
@click.option("--note", help="What changed in this run's model, e.g. 'v3: deblur augmentation'.")
@click.option(
    "--target",
    "target_category",
    help="The category this run set out to fix (the comparison says what the fix bought).",
)
@click.option(
    "--analyze",
    "then_analyze",
    is_flag=True,
    help="Then run `labeltool analyze` on the run: likely label errors and image signals, for "
    "the review screen to suggest.",
)
@click.option(
    "--allow-different-examples",
    is_flag=True,
    help="Accept a file whose dev examples differ from the run it updates (or, for a new run, "
    "from the previous run); an updated run drops the examples the file lacks.",
)
@click.option(
    "--embeddings",
    "embeddings_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The model's embedding of each example, for 'more like this' and clusters: Parquet "
    "or CSV with example_id and emb_0..emb_k columns, a .npz with arrays example_id and "
    "embeddings, or an (n, k) .npy whose rows follow the predictions file's [default: the "
    "predictions file's own emb_ columns, if any].",
)
@click.pass_obj
def import_command(
    state: _State,
    predictions: Path,
    project: str,
    images_root: str | None,
    classes: str | None,
    categories_file: Path | None,
    check_images: str,
    allow_missing_images: bool,
    replace_classes: bool,
    run_name: str | None,
    note: str | None,
    target_category: str | None,
    then_analyze: bool,
    allow_different_examples: bool,
    embeddings_file: Path | None,
) -> None:
    """Import a predictions file (CSV or Parquet) into a project, all or nothing.

    Columns: example_id, image, label, prediction; optional confidence, prob_<class>, split,
    and the model's embedding as emb_0..emb_k (or in a side file: --embeddings).
    Re-importing is safe: unchanged rows stay, changed predictions are updated and their
    reviewed errors marked needs re-review. A new --run starts with the previous run's image
    tags on the examples still misclassified.
    """
    from labeltool.categories import load_categories_file
    from labeltool.importing import import_predictions

    db = state.database()
    with db.begin() as session, _progress_bar("importing") as progress:
        summary = import_predictions(
            session,
            predictions,
            project=project,
            images_root=images_root,
            class_names=[c.strip() for c in classes.split(",") if c.strip()] if classes else None,
            check_images="none" if allow_missing_images else check_images,
            replace_classes=replace_classes,
            progress=progress,
            run=run_name,
            note=note,
            target_category=target_category,
            allow_different_examples=allow_different_examples,
            embeddings_file=embeddings_file,
            user=state.user,
        )
        created = []
        if categories_file is not None:
            from labeltool.projects import get_project

            project_id = get_project(session, project).id
            created = load_categories_file(
                session, categories_file, project_id=project_id, user=state.user
            )
    click.echo(str(summary))
    if created:
        click.echo(f"categories added: {', '.join(c.name for c in created)}")
    if then_analyze:
        # Its own transactions: the import is committed whatever the analysis meets.
        _analyze_run(db, project=project, run_name=summary.run, images=True, user=state.user)


@cli.command("embeddings")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--project", required=True, help="Project name.")
@click.option(
    "--run",
    "run_name",
    help="The run (model version) the embeddings are of [default: the project's latest run].",
)
@click.pass_obj
def embeddings_command(state: _State, file: Path, project: str, run_name: str | None) -> None:
    """Add the model's embeddings to a run already imported, all or nothing.

    FILE is Parquet or CSV with example_id and emb_0..emb_k columns, or a .npz with arrays
    example_id and embeddings (n, k). They replace the examples' vectors; an id the run lacks
    or given twice is refused; examples left out have none ("more like this" skips them).
    """
    from labeltool.embeddings import import_file
    from labeltool.projects import get_project
    from labeltool.runs import get_run

    with state.database().begin() as session:
        run = get_run(session, project_id=get_project(session, project).id, name=run_name)
        summary = import_file(session, file, run_id=run.id, user=state.user)
    click.echo(f"project '{project}', run '{run.name}': {summary}")


@cli.command("predict")
@click.argument("images", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--model",
    "model_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="TorchScript file, or weights-only state_dict / checkpoint dict (.pt).",
)
@click.option(
    "--arch",
    metavar="NAME",
    help="Architecture to load a state_dict into, and whose image preprocessing to use "
    "[default: the one the model file names]. An unknown name lists the known ones.",
)
@click.option(
    "--classes",
    metavar="A,B,...",
    help="Class names in the model's output order [default: the checkpoint's, "
    "else the sorted class folders or the manifest's labels].",
)
@click.option(
    "--manifest",
    is_flag=True,
    help="Read IMAGES as a manifest CSV (image,label[,example_id]) whatever its extension "
    "[default: a .csv file is a manifest, a folder has a subfolder per class].",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Predictions CSV to write (replaced if it exists).",
)
@click.option(
    "--split",
    default="dev",
    show_default=True,
    type=click.Choice(SPLITS),
    help="Split to record on every row.",
)
@click.option(
    "--batch-size",
    default=64,
    show_default=True,
    type=click.IntRange(min=1),
    help="Images read and scored at once (memory grows with it, not with the image count).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="torch CPU threads [default: the CPUs not already busy, 1 to 8].",
)
@click.option(
    "--import",
    "import_after",
    is_flag=True,
    help="Then import the predictions into --project in one transaction.",
)
@click.option("--project", help="Project to import into (with --import; created if new).")
@click.option(
    "--embeddings/--no-embeddings",
    "embeddings",
    default=True,
    show_default=True,
    help="Also write each image's penultimate-layer features (the input of the model's last "
    "Linear layer) as emb_0..emb_k columns, 6 significant digits, for 'more like this' and "
    "clusters; with --import they are stored too. About 10 bytes a feature a row.",
)
@click.pass_obj
def predict_command(
    state: _State,
    images: Path,
    model_file: Path,
    arch: str | None,
    classes: str | None,
    manifest: bool,
    out: Path,
    split: str,
    batch_size: int,
    threads: int | None,
    import_after: bool,
    project: str | None,
    embeddings: bool,
) -> None:
    """Run a classifier over IMAGES on the CPU and write a predictions file.

    IMAGES is a folder with a subfolder per class (root/<class>/<image>) or a manifest CSV
    with columns image,label[,example_id], paths relative to its folder. The model is never
    unpickled: only TorchScript files and weights-only state_dicts are accepted.
    """
    if import_after and not project:
        raise click.UsageError("--import needs --project NAME")
    if project and not import_after:
        raise click.UsageError("--project is only used with --import")
    try:
        import torch  # noqa: F401  (only to say clearly when it is missing)
    except ImportError:
        raise LabeltoolError(
            "labeltool predict needs torch, which this install lacks (a reviewer's install "
            "serves, reviews, reports and exports without it): pip install 'labeltool[predict]'"
        ) from None
    from labeltool.datasets import open_dataset
    from labeltool.predict import load_model, write_predictions

    class_names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    model = load_model(model_file, arch=arch, class_names=class_names)
    dataset = open_dataset(images, class_names=model.class_names, manifest=manifest)
    db = state.database() if import_after else None  # a wrong --db fails before the long part
    with _progress_bar("predicting") as progress:
        written = write_predictions(
            out,
            model,
            dataset,
            split=split,
            batch_size=batch_size,
            threads=threads,
            progress=progress,
            embeddings=embeddings,
        )
    click.echo(str(written))
    if db is not None:
        from labeltool.importing import import_predictions

        with db.begin() as session, _progress_bar("writing examples") as progress:
            summary = import_predictions(
                session,
                written.path,
                project=project,
                images_root=written.images_root,
                class_names=written.class_names,
                progress=progress,
                user=state.user,
            )
        click.echo(str(summary))


@cli.command("projects")
@click.pass_obj
def projects_command(state: _State) -> None:
    """List the projects with their dev error rate."""
    from labeltool.projects import dev_error_rate, list_projects

    with state.database().begin() as session:
        projects = list_projects(session)
        if not projects:
            click.echo("no projects yet: run `labeltool import PREDICTIONS --project NAME`")
        for project in projects:
            rate = dev_error_rate(session, project_id=project.id)
            click.echo(
                f"{project.name}\t{rate.dev_examples} dev examples\t"
                f"{rate.misclassified} misclassified\tdev error {rate.dev_error:.1%}"
            )


@cli.command("delete-project")
@click.argument("name")
@click.confirmation_option(
    prompt="Delete the project with all its examples, tags and categories?",
    help="Delete without asking.",
)
@click.pass_obj
def delete_project_command(state: _State, name: str) -> None:
    """Delete a project with its examples, categories, tags and reviews (export them first)."""
    from labeltool.projects import delete_project

    with state.database().begin() as session:
        held = delete_project(session, name, user=state.user)
    click.echo(f"deleted project '{name}' ({held.dev_examples} dev examples)")


@cli.command("members")
@click.option("--project", required=True, help="Project name.")
@click.pass_obj
def members_command(state: _State, project: str) -> None:
    """List a project's members and their roles: lead, reviewer or viewer.

    A lead changes the taxonomy, effort, eyeball share and runs, deletes the project and
    assigns roles; a reviewer tags, comments and corrects labels; a viewer reads the report and
    exports. A project without members is open: anyone may do anything in it.
    """
    from labeltool.projects import get_project
    from labeltool.roles import members

    with state.database().begin() as session:
        found = members(session, project_id=get_project(session, project).id)
    if not found:
        click.echo(
            f"project '{project}' has no members: anyone may do anything in it (make someone "
            f"its lead: labeltool member --project {project} NAME --role lead)"
        )
    for member in found:
        click.echo(f"{member.user}\t{member.role}")


@cli.command("member")
@click.argument("user")
@click.option("--project", required=True, help="Project name.")
@click.option(
    "--role",
    type=click.Choice([role.value for role in Role]),
    help="The role to give USER (the first member of a project is its lead).",
)
@click.option("--remove", is_flag=True, help="Take USER out of the project's members.")
@click.pass_obj
def member_command(state: _State, user: str, project: str, role: str | None, remove: bool) -> None:
    """Give USER a role in a project, or remove them; only a lead may, acting with --as.

    The first member of a project is its lead, and the last lead cannot step down or be
    removed.
    """
    from labeltool.projects import get_project
    from labeltool.roles import remove_member, set_role

    if (role is None) == (not remove):
        raise click.UsageError("give --role or --remove (one of them)")
    with state.database().begin() as session:
        project_id = get_project(session, project).id
        if remove:
            remove_member(session, project_id=project_id, user=user, by=state.user)
        else:
            member = set_role(session, project_id=project_id, user=user, role=role, by=state.user)
    if remove:
        click.echo(f"{' '.join(user.split())} is no longer a member of '{project}'")
    else:
        click.echo(f"{member.user} is now a {member.role} of '{project}'")


@cli.command("serve")
@click.option("--port", default=8501, show_default=True, help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.pass_obj
def serve_command(state: _State, port: int, host: str) -> None:
    """Start the review app (Streamlit) on the chosen database."""
    state.database().dispose()  # applies migrations before the server starts
    env = {**os.environ, DB_ENV_VAR: state.url}
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP_PATH),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",  # reviewers need no "Deploy" or developer menu
    ]  # fmt: skip
    click.echo(f"labeltool: serving {_shown(state.url)} at http://{host}:{port}", err=True)
    try:
        raise SystemExit(subprocess.call(command, env=env))
    except KeyboardInterrupt:
        raise SystemExit(0) from None


@cli.command("report")
@click.option("--project", required=True, help="Project name.")
@_format_option(
    "table: readable text with the headline; csv: the ceiling table; json: headline "
    "numbers, categories, what is not yet explained and notes."
)
@click.option(
    "--reviewer",
    help="Count only the errors this reviewer reviewed, and only their tags [default: everyone].",
)
@click.option(
    "--include-archived",
    is_flag=True,
    help="Rank archived categories too (marked archived) [default: left out].",
)
@click.option(
    "--confusion-pair",
    nargs=2,
    metavar="LABEL PREDICTION",
    default=None,
    help="Only the errors of this confusion pair (true label, predicted label), e.g. dog cat.",
)
@click.option(
    "--run",
    "run_name",
    help="The run (model version) to report on [default: the project's latest run].",
)
@_counting_option()
@click.pass_obj
def report_command(
    state: _State,
    project: str,
    output_format: str,
    reviewer: str | None,
    include_archived: bool,
    confusion_pair: tuple[str, str] | None,
    run_name: str | None,
    counting: str,
) -> None:
    """Rank the error categories by share of the reviewed errors, with each one's ceiling.

    A category's share is of the reviews that could have used it (made after it was added,
    or re-reviews). The ceiling is the most the dev error can fall if the category is fixed
    (share x dev error). Intervals are Wilson 95% and speak about the model's errors in
    general (the dev set is itself a sample); the ceiling and error after fix inherit the
    share's. Reviewed errors in no category are "not yet explained", apart from the ranking.
    """
    import json

    from labeltool import report
    from labeltool.export import to_csv
    from labeltool.projects import get_project
    from labeltool.runs import get_run

    pair = tuple(confusion_pair) if confusion_pair else None
    with state.database().begin() as session:
        found = get_project(session, project)
        project_id = found.id
        unknown = [label for label in pair or () if label not in found.class_names]
        if unknown:
            raise click.BadParameter(
                f"unknown label '{unknown[0]}' (classes: {', '.join(found.class_names)})",
                param_hint="--confusion-pair",
            )
        run = get_run(session, project_id=project_id, name=run_name)
        scope = {
            "project_id": project_id,
            "reviewer": reviewer,
            "confusion_pair": pair,
            "run_id": run.id,
            "counting": counting,
        }
        if output_format == "json":
            data = report.report_json(session, **scope, include_archived=include_archived)
            click.echo(json.dumps(data, indent=2))
            return
        table = report.ceiling_table(session, **scope, include_archived=include_archived)
        if output_format == "csv":
            click.echo(to_csv(table), nl=False)
            return
        title = f"Project '{project}', run '{run.name}'"
        if reviewer:
            title += f", reviewer {reviewer}"
        if pair:
            title += f", confusion pair {pair[0]}-as-{pair[1]}"
        text = report.report_text(
            report.headline(session, **scope),
            table,
            report.incorrect_label_accounting(session, **scope),
            title=title,
            confusion_pair=pair,
        )
        from labeltool import splits

        by_split = splits.error_by_split(session, project_id=project_id, run_id=run.id)
        human = get_project(session, project).human_level_error
    click.echo(text, nl=False)
    if len(by_split) > 1 or human is not None:
        click.echo("\n" + splits.splits_text(by_split, human_level_error=human), nl=False)


@cli.command("runs")
@click.option("--project", required=True, help="Project name.")
@_format_option("table: one line a run; csv and json: the same columns, for tools.")
@click.pass_obj
def runs_command(state: _State, project: str, output_format: str) -> None:
    """List the project's runs (model versions), oldest first, with their dev error."""
    from labeltool.export import to_csv
    from labeltool.projects import get_project
    from labeltool.runs import runs_table

    with state.database().begin() as session:
        table = runs_table(session, project_id=get_project(session, project).id)
    if output_format == "csv":
        click.echo(to_csv(table), nl=False)
        return
    if output_format == "json":
        import json

        records = table.assign(imported_at=table["imported_at"].map(_iso)).to_dict("records")
        click.echo(json.dumps(records, indent=2))
        return
    for row in table.itertuples(index=False):
        note = f"  {row.note}" if row.note else ""
        target = f"  (target: {row.target})" if row.target else ""
        click.echo(
            f"{row.run:<12} {row.dev_examples:>8,} dev examples  {row.misclassified:>7,} "
            f"misclassified  dev error {row.dev_error:6.1%}{note}{target}"
        )


@cli.command("analyze")
@click.option("--project", required=True, help="Project name.")
@click.option(
    "--run",
    "run_name",
    help="The run (model version) to analyse [default: the project's latest run].",
)
@click.option(
    "--no-images",
    is_flag=True,
    help="Only the likely label errors (from the prob_ columns): read no image.",
)
@click.pass_obj
def analyze_command(state: _State, project: str, run_name: str | None, no_images: bool) -> None:
    """Find likely label errors, blurry, dark, bright, low-information and odd-sized images,
    and near-duplicates among the run's dev examples, for the review screen to suggest.

    Likely label errors come from confident learning over the prob_<class> columns; image
    signals are judged against the project's own images. Images measured once are kept, so
    running it again (after an interruption, or a new run) measures only new images.
    """
    _analyze_run(
        state.database(),
        project=project,
        run_name=run_name,
        images=not no_images,
        user=state.user,
    )


def _analyze_run(db, *, project: str, run_name: str | None, images: bool, user: str | None) -> None:
    """`labeltool analyze`'s work: the signals, then (reading images) a pixel embedding for
    each dev error of a run that brought no model features, so "more like this" and the
    Gallery's clusters work on any project. Two transactions: the signals are kept even if
    embedding is interrupted, and embedding resumes where it stopped."""
    from labeltool.projects import get_project
    from labeltool.runs import get_run
    from labeltool.signals import analyze
    from labeltool.similar import embed_pixels

    with db.begin() as session, _progress_bar("measuring images") as bar:
        summary = analyze(
            session,
            project_id=get_project(session, project).id,
            run=run_name,
            images=images,
            progress=lambda _stage, done, total: bar(done, total),
            user=user,
        )
    click.echo(str(summary))
    if not images:
        return
    with db.begin() as session, _progress_bar("embedding images") as bar:
        project_id = get_project(session, project).id
        run = get_run(session, project_id=project_id, name=summary.run)
        embedded = embed_pixels(session, project_id=project_id, run_id=run.id, progress=bar)
    click.echo(str(embedded))


@cli.command("suggest")
@click.option("--project", required=True, help="Project name.")
@click.option(
    "--run",
    "run_name",
    help="The run (model version) [default: the project's latest run].",
)
@_format_option("table: one line a suggestion; csv and json: example_id, category, score, reason.")
@click.option(
    "--quality",
    is_flag=True,
    help="Instead, how good each suggester has been on the reviewed errors: of the errors it "
    "suggested its category for, the share reviewers tagged with it (precision), and of those "
    "they tagged, the share it had suggested (recall).",
)
@click.pass_obj
def suggest_command(
    state: _State, project: str, run_name: str | None, output_format: str, quality: bool
) -> None:
    """List the suggested categories of the run's dev errors (run `labeltool analyze` first):
    example_id, category, score, reason. Nothing is tagged."""

    import pandas as pd

    from labeltool.projects import get_project
    from labeltool.signals import suggester_quality, suggestions

    with state.database().begin() as session:
        project_id = get_project(session, project).id
        if quality:
            rows = suggester_quality(session, project_id=project_id, run=run_name)
            table = pd.DataFrame(
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
                    for q in rows
                ],
                columns=[
                    "suggester",
                    "category",
                    "suggested",
                    "confirmed",
                    "precision",
                    "tagged",
                    "recall",
                ],
            )
        else:
            found = suggestions(session, project_id=project_id, run=run_name)
            table = pd.DataFrame(
                [(s.example_id, s.category, round(s.score, 4), s.reason) for s in found],
                columns=["example_id", "category", "score", "reason"],
            )
    if output_format != "table":
        _print_table(table, output_format, None)
    elif quality:
        for q in rows:
            precision = f"{q.precision:.0%}" if q.precision is not None else "n/a"
            recall = f"{q.recall:.0%}" if q.recall is not None else "n/a"
            click.echo(
                f"{q.kind:<20} -> {q.category:<22} precision {precision:>4} ({q.confirmed} of "
                f"{q.suggested} reviewed suggestions tagged)  recall {recall:>4} "
                f"({q.confirmed} of {q.tagged} tagged)"
            )
    elif table.empty:
        click.echo("no suggestions (has `labeltool analyze` run on this run?)")
    else:
        for row in table.itertuples(index=False):
            click.echo(f"{row.example_id:<20} {row.category:<24} {row.score:6.3f}  {row.reason}")


def _iso(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@cli.command("agreement")
@click.option("--project", required=True, help="Project name.")
@click.option("--run", "run_name", help="The run [default: the project's latest run].")
@_format_option(
    "table: one line a category; csv and json: category, examples, reviewers, yes, ratings, "
    "statistic, coefficient, ci_low, ci_high, observed_agreement, chance_agreement, reading, "
    "reason."
)
@click.pass_obj
def agreement_command(state: _State, project: str, run_name: str | None, output_format) -> None:
    """Do reviewers agree? For each category, over the errors two or more reviewers reviewed:
    Cohen's kappa (two reviewers) or Krippendorff's alpha (more), with a 95% bootstrap
    interval and its Landis & Koch reading. Worst agreement first."""
    from labeltool.agreement import agreement, to_frame, why_empty
    from labeltool.projects import get_project
    from labeltool.runs import get_run

    with state.database().begin() as session:
        project_id = get_project(session, project).id
        run = get_run(session, project_id=project_id, name=run_name)
        rows = agreement(session, project_id=project_id, run_id=run.id)
        empty = why_empty(session, project_id=project_id, run_id=run.id) if not rows else ""
    if output_format == "table" and not rows:
        click.echo(empty)
        return
    _print_table(to_frame(rows), output_format, _agreement_line)


def _agreement_line(row) -> str:
    if row.coefficient is None or row.coefficient != row.coefficient:  # None or NaN
        return f"{row.category:<24} {row.examples:>6,} errors  {row.reason}"
    return (
        f"{row.category:<24} {row.examples:>6,} errors  {row.reviewers} reviewers  "
        f"{row.statistic} {row.coefficient:5.2f} (95% {row.ci_low:.2f} to {row.ci_high:.2f}, "
        f"{row.reading})"
    )


@cli.command("history")
@click.option("--project", required=True, help="Project name.")
@click.option("--example", "example_id", help="Only this example's changes (in every run).")
@click.option("--user", "by", help="Only this user's changes.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice([k.value for k in Kind]),
    help="Only changes of this kind (repeat for more).",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows, newest first.")
@_format_option(
    "table: one line a change of one value, newest first; csv and json: at, user, change, run, "
    "example_id, what, old, new, whose, change_id, undoes."
)
@click.pass_obj
def history_command(
    state: _State,
    project: str,
    example_id: str | None,
    by: str | None,
    kinds: tuple[str, ...],
    limit: int | None,
    output_format: str,
) -> None:
    """The project's audit trail: who changed which tag, comment, corrected label, review
    state, category or setting, when, and from what to what. Newest first."""
    from labeltool.audit import history
    from labeltool.projects import get_project

    with state.database().begin() as session:
        project_id = get_project(session, project).id
        table = history(
            session,
            project_id=project_id,
            example_id=example_id,
            user=by,
            kinds=kinds,
            limit=limit,
        )
    if output_format == "table" and table.empty:
        click.echo("no changes recorded" + (f" for example {example_id}" if example_id else ""))
        return
    table["at"] = [_iso(at) for at in table["at"]]
    _print_table(table, output_format, _history_line)


def _history_line(row) -> str:
    what = "" if row.what == row.change else f" {row.what}"
    where = f" run {row.run} example {row.example_id}" if row.example_id else ""
    whose = f" ({row.whose}'s)" if row.whose else ""
    undo = " [undo]" if row.undoes else ""
    return (
        f"{row.at[:19]}  {row.user or '(nobody named)'}  {row.change}{what}{whose}{where}: "
        f"{_shown_value(row.old)} -> {_shown_value(row.new)}{undo}"
    )


def _shown_value(value) -> str:
    return "(none)" if value is None else repr(value)


@cli.command("undo")
@click.option("--project", required=True, help="Project name.")
@click.pass_obj
def undo_command(state: _State, project: str) -> None:
    """Undo your own last change in the project (acting as --as / $LABELTOOL_USER): every
    value it set goes back, unless someone changed one since."""
    from labeltool.audit import undo_last
    from labeltool.projects import get_project

    with state.database().begin() as session:
        project_id = get_project(session, project).id
        undone = undo_last(session, project_id=project_id, user=state.user)
    click.echo(f"undid {undone.summary} ({undone.values} value{'s' if undone.values != 1 else ''})")


@cli.command("overlap")
@click.option("--project", required=True, help="Project name.")
@click.option("--run", "run_name", help="The run [default: the project's latest run].")
@click.argument("share", required=False, metavar="[PERCENT]")
@click.pass_obj
def overlap_command(state: _State, project: str, run_name: str | None, share: str | None) -> None:
    """Have PERCENT of the random queue's errors reviewed by two reviewers, each blind to the
    other's tags until both are done (a lead's setting, acting with --as; 0: one reviewer
    each). Raising it later adds errors without taking any out. Without PERCENT, shows how
    far the double review has got."""
    from labeltool import double_review
    from labeltool.projects import get_project
    from labeltool.runs import get_run

    fraction = None
    if share is not None:
        try:
            fraction = float(share.strip().removesuffix("%")) / 100
        except ValueError:
            raise click.BadParameter(
                f"'{share}' is not a percentage (e.g. 20 or 20%)", param_hint="PERCENT"
            ) from None
        if not 0.0 <= fraction <= 1.0:
            raise click.BadParameter(f"{share} is not between 0 and 100", param_hint="PERCENT")
    with state.database().begin() as session:
        project_id = get_project(session, project).id
        if share is not None:
            double_review.set_overlap_fraction(
                session, project_id=project_id, fraction=fraction, user=state.user
            )
        run = get_run(session, project_id=project_id, name=run_name)
        progress = double_review.status(session, project_id=project_id, run_id=run.id)
    click.echo(f"project '{project}': {progress.sentence}")


@cli.command("disagreements")
@click.option("--project", required=True, help="Project name.")
@click.option("--run", "run_name", help="The run [default: the project's latest run].")
@click.option(
    "--all", "include_adjudicated", is_flag=True, help="Include those a lead already decided."
)
@_format_option(
    "table: one line an error; csv and json: example_id, label, prediction, reviewers, tags, "
    "consensus, differing, adjudicated, decided, lead."
)
@click.pass_obj
def disagreements_command(
    state: _State,
    project: str,
    run_name: str | None,
    include_adjudicated: bool,
    output_format: str,
) -> None:
    """The errors two or more reviewers tagged differently (on a category every one of them
    could have used), awaiting a lead's decision (`labeltool adjudicate`)."""
    import json

    from labeltool import double_review
    from labeltool.projects import get_project
    from labeltool.runs import get_run

    with state.database().begin() as session:
        project_id = get_project(session, project).id
        run = get_run(session, project_id=project_id, name=run_name)
        rows = double_review.disagreements(
            session, project_id=project_id, run_id=run.id, include_adjudicated=include_adjudicated
        )
    if output_format == "json":
        click.echo(json.dumps(double_review.to_records(rows), indent=2, ensure_ascii=False))
        return
    if output_format == "table" and not rows:
        click.echo(f"project '{project}': no disagreement awaits adjudication")
        return
    _print_table(double_review.to_frame(rows), output_format, _disagreement_line)


def _disagreement_line(row) -> str:
    decided = f"  decided by {row.lead}: {row.decided or '(none)'}" if row.adjudicated else ""
    from labeltool.models import confusion_pair_name

    pair = confusion_pair_name(row.label, row.prediction)
    return f"{row.example_id}  {pair}  {row.tags}{decided}"


@cli.command("adjudicate")
@click.option("--project", required=True, help="Project name.")
@click.option("--run", "run_name", help="The run [default: the project's latest run].")
@click.option("--example", "example_id", required=True, help="The example's id.")
@click.option(
    "--categories",
    required=True,
    help='The final categories, comma-separated, e.g. "blurry,dark" ("" for none).',
)
@click.pass_obj
def adjudicate_command(
    state: _State, project: str, run_name: str | None, example_id: str, categories: str
) -> None:
    """Settle a disagreement: the example's categories are those given, whatever its
    reviewers tagged (a lead's decision, acting with --as; a new decision replaces the last).
    The report counts it so by default (--counting adjudicated)."""
    from labeltool import double_review
    from labeltool.labeling import find_example
    from labeltool.projects import get_project
    from labeltool.runs import get_run

    names = [name for name in categories.split(",") if name.strip()]
    with state.database().begin() as session:
        project_id = get_project(session, project).id
        run = get_run(session, project_id=project_id, name=run_name)
        pk = find_example(session, project_id=project_id, example_id=example_id, run_id=run.id)
        ids = double_review.category_ids_by_name(session, project_id=project_id, names=names)
        decided = double_review.adjudicate(
            session, example_pk=pk, category_ids=ids, lead=state.user
        )
    click.echo(f"example '{example_id}': {', '.join(decided) or 'no category'} (adjudicated)")


@cli.command("similar")
@click.option("--project", required=True, help="Project name.")
@click.option("--run", "run_name", help="The run [default: the project's latest run].")
@click.option("--example", "example_id", required=True, help="The example's id.")
@click.option(
    "-k",
    "count",
    type=click.IntRange(1, 10_000),
    default=10,
    show_default=True,
    help="How many errors to list.",
)
@_format_option("csv and json: example_id, distance, label, prediction, review_state.")
@click.pass_obj
def similar_command(
    state: _State, project: str, run_name: str | None, example_id: str, count: int, output_format
) -> None:
    """List the run's dev errors most like one example (more like this), nearest first, by
    the model's features or, without them, the pixel embeddings `labeltool analyze` makes.
    Distance is cosine: 0 the same picture, 1 unrelated."""
    import pandas as pd

    from labeltool.labeling import example_views, find_example
    from labeltool.projects import get_project
    from labeltool.runs import get_run
    from labeltool.similar import NoEmbedding, neighbours, space

    with state.database().begin() as session:
        project_id = get_project(session, project).id
        run = get_run(session, project_id=project_id, name=run_name)
        pk = find_example(session, project_id=project_id, example_id=example_id, run_id=run.id)
        try:
            found = neighbours(space(session, run_id=run.id), pk, k=count)
        except NoEmbedding as exc:
            raise NoEmbedding(f"example '{example_id}' {exc}") from None
        views = {v.pk: v for v in example_views(session, pks=[n for n, _ in found])}
    table = pd.DataFrame(
        [
            (
                views[n].example_id,
                round(d, 4),
                views[n].label,
                views[n].prediction,
                views[n].review_state,
            )
            for n, d in found
        ],
        columns=["example_id", "distance", "label", "prediction", "review_state"],
    )
    _print_table(
        table,
        output_format,
        lambda r: (
            f"{r.example_id:<24} {r.distance:6.3f}  {r.label}-as-{r.prediction}  {r.review_state}"
        ),
    )


@cli.command("clusters")
@click.option("--project", required=True, help="Project name.")
@click.option("--run", "run_name", help="The run [default: the project's latest run].")
@click.option(
    "--clusters",
    "n_clusters",
    type=click.IntRange(0, 1_000),
    default=0,
    show_default=True,
    help="How many groups; 0 picks about sqrt(errors / 2), at most 40.",
)
@click.option(
    "--all",
    "every_error",
    is_flag=True,
    help="Group every dev error, not only the untagged ones.",
)
@_format_option(
    "table: one line a cluster; csv and json: cluster, rank, example_id, distance_to_centre, "
    "spread (one row per member, nearest the centre first)."
)
@click.pass_obj
def clusters_command(
    state: _State,
    project: str,
    run_name: str | None,
    n_clusters: int,
    every_error: bool,
    output_format: str,
) -> None:
    """Group the run's untagged dev errors by look (k-means over their embeddings), largest
    group first, each member listed nearest its centre first, so a group can be named and
    tagged together (in the Gallery's Clusters view, or with import-tags --targeted)."""
    import numpy as np
    import pandas as pd
    from sqlalchemy import select

    from labeltool.models import Example
    from labeltool.projects import get_project
    from labeltool.review_queue import NO_CATEGORY, QueueFilter, queue_all_ids
    from labeltool.runs import get_run
    from labeltool.similar import clusters, space

    with state.database().begin() as session:
        project_id = get_project(session, project).id
        run = get_run(session, project_id=project_id, name=run_name)
        queue = QueueFilter(
            states=(), category_id=None if every_error else NO_CATEGORY, run_id=run.id
        )
        pks = queue_all_ids(session, project_id=project_id, queue=queue)
        the_space = space(session, run_id=run.id)
        found = clusters(the_space, pks=pks, n_clusters=n_clusters or None)
        ids = dict(
            session.execute(
                select(Example.id, Example.example_id).where(Example.run_id == run.id)
            ).all()
        )
    rows = []
    for cluster in found:
        vectors = the_space.matrix[the_space.rows(cluster.members)]
        centre = vectors.mean(axis=0)
        centre /= np.linalg.norm(centre) or 1.0
        by_pk = dict(
            zip(
                the_space.pks[the_space.rows(cluster.members)].tolist(),
                (1.0 - vectors @ centre).tolist(),
                strict=True,
            )
        )
        rows += [
            (cluster.number, rank, ids[pk], round(max(by_pk[pk], 0.0), 4), round(cluster.spread, 4))
            for rank, pk in enumerate(cluster.members, start=1)
        ]
    table = pd.DataFrame(
        rows, columns=["cluster", "rank", "example_id", "distance_to_centre", "spread"]
    )
    if output_format != "table":
        _print_table(table, output_format, None)
        return
    if not found:
        click.echo("no errors to group (none untagged, or no embeddings: run labeltool analyze)")
    for cluster in found:
        sample = ", ".join(ids[pk] for pk in cluster.members[:5])
        more = f", ... ({cluster.size - 5} more)" if cluster.size > 5 else ""
        click.echo(
            f"cluster {cluster.number:>3}: {cluster.size:>6,} errors  spread "
            f"{cluster.spread:.2f}  {sample}{more}"
        )


def _print_table(table, output_format: str, line) -> None:
    """Print `table` as CSV, JSON records, or one `line(row)` per row."""
    import json

    from labeltool.export import to_csv

    if output_format == "csv":
        click.echo(to_csv(table), nl=False)
    elif output_format == "json":
        records = table.astype(object).where(table.notna(), None).to_dict("records")
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
    else:
        for row in table.itertuples(index=False):
            click.echo(line(row))


@cli.command("export")
@click.option("--project", required=True, help="Project name.")
@click.option(
    "--table",
    type=click.Choice(["wide", "long", "report", "corrections"]),
    required=True,
    help="wide: the method's spreadsheet (one row per reviewed error, a 0/1 column per "
    "category; import-tags reads it back); long: one row per tag on a reviewed error; report: "
    "the ceiling table; corrections: reviewed errors given a corrected label. Skipped examples "
    "are in none of them.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="CSV file to write (UTF-8; formula-like cells are prefixed with ').",
)
@click.option(
    "--run",
    "run_name",
    help="The run (model version) to export [default: the project's latest run].",
)
@_counting_option()
@click.pass_obj
def export_command(
    state: _State, project: str, table: str, out: Path, run_name: str | None, counting: str
) -> None:
    """Write one of the project's tables as a CSV safe to open in a spreadsheet."""
    from labeltool.export import export_table, to_csv
    from labeltool.projects import get_project
    from labeltool.runs import get_run

    with state.database().begin() as session:
        project_id = get_project(session, project).id
        run = get_run(session, project_id=project_id, name=run_name)
        frame = export_table(
            session, project_id=project_id, table=table, run_id=run.id, counting=counting
        )
    try:
        to_csv(frame, out)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    rows = f"{len(frame)} row{'' if len(frame) == 1 else 's'}"
    counted = f", counting: {counting}" if table == "report" else ""
    click.echo(f"wrote the {table} table of project '{project}' ({rows}{counted}) to {out}")


@cli.command("import-tags")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--project", required=True, help="Project name (its predictions must be imported).")
@click.option(
    "--reviewer",
    help="Record every row as reviewed by this reviewer [default: each row's reviewer cell, "
    "else 'import'].",
)
@click.option(
    "--targeted",
    is_flag=True,
    help="The rows were picked (by a filter, the model's confidence or by hand), not drawn at "
    "random: the report counts them but leaves them out of its estimate.",
)
@click.option("--run", "run_name", help="The run whose errors the rows are [default: the latest].")
@click.pass_obj
def import_tags_command(
    state: _State,
    file: Path,
    project: str,
    reviewer: str | None,
    targeted: bool,
    run_name: str | None,
) -> None:
    """Import a wide table (as `export --table wide` writes it) back: tags, comments, labels.

    Columns: example_id, then one 0/1 column per category (new ones are created), and
    optionally comment, corrected_label, reviewer. All or nothing. A row re-reviews its example
    only when the file has a column for every live category; otherwise the summary says which
    examples stay 'needs re-review'.
    """
    from labeltool.projects import get_project
    from labeltool.runs import get_run
    from labeltool.tags_import import import_tags

    with state.database().begin() as session:
        project_id = get_project(session, project).id
        summary = import_tags(
            session,
            file,
            project_id=project_id,
            reviewer=reviewer,
            targeted=targeted,
            run_id=get_run(session, project_id=project_id, name=run_name).id,
            user=state.user,
        )
    click.echo(str(summary))


@cli.command("eyeball")
@click.option("--project", required=True, help="Project name.")
@click.option(
    "--share",
    type=click.FloatRange(0, 100, min_open=True),
    metavar="PERCENT",
    help="Keep this share of the dev set as the eyeball part whose errors are reviewed "
    "(raising it later moves fresh examples over).",
)
@click.option("--off", is_flag=True, help="Review the whole dev set again (no blackbox part).")
@click.pass_obj
def eyeball_command(state: _State, project: str, share: float | None, off: bool) -> None:
    """Split a large dev set into an eyeball part (reviewed) and a blackbox part (measured).

    Without --share or --off, shows the split and the eyeball and blackbox error rates.
    """
    from labeltool import eyeball
    from labeltool.projects import get_project

    if share is not None and off:
        raise click.UsageError("give --share or --off, not both")
    with state.database().begin() as session:
        project_id = get_project(session, project).id
        if share is not None or off:
            eyeball.set_eyeball_fraction(
                session,
                project_id=project_id,
                fraction=None if off else share / 100,
                user=state.user,
            )
        split = eyeball.eyeball_split(session, project_id=project_id)
    if split.fraction is None:
        examples = split.eyeball_examples
        click.echo(f"project '{project}': reviewers see the whole dev set ({examples} examples)")
        return
    click.echo(
        f"project '{project}': eyeball part {split.fraction:.1%} of the dev set, "
        f"{split.eyeball_examples} examples, error {split.eyeball_error:.1%} "
        f"({split.eyeball_errors} errors); blackbox part {split.blackbox_examples} examples, "
        f"error {split.blackbox_error:.1%}"
    )
    if split.warning:
        click.echo(split.warning)


@cli.command("compare")
@click.option("--project", required=True, help="Project name.")
@click.option(
    "--runs",
    "run_names",
    nargs=2,
    required=True,
    metavar="BEFORE AFTER",
    help="The two runs (model versions) to compare, the earlier first.",
)
@click.option(
    "--target",
    help="The category the new run set out to fix [default: the AFTER run's target].",
)
@_format_option("table: readable text; csv: the categories side by side; json: everything.")
@click.pass_obj
def compare_command(
    state: _State,
    project: str,
    run_names: tuple[str, str],
    target: str | None,
    output_format: str,
) -> None:
    """Compare two runs: dev errors, errors fixed and new, and what the fix bought.

    Errors are matched by example id over the dev set. For the targeted category, the
    recovered points are its ceiling in the earlier run minus its ceiling in the later one.
    """
    import json

    from labeltool import compare
    from labeltool.export import to_csv
    from labeltool.projects import get_project

    before, after = run_names
    with state.database().begin() as session:
        project_id = get_project(session, project).id
        comparison = compare.compare_runs(
            session, project_id=project_id, before=before, after=after, target=target
        )
    if output_format == "json":
        click.echo(json.dumps(compare.comparison_json(comparison), indent=2))
        return
    if output_format == "csv":
        click.echo(to_csv(compare.comparison_table(comparison)), nl=False)
        return
    title = f"Project '{project}': run '{comparison.before.name}' -> run '{comparison.after.name}'"
    click.echo(compare.comparison_text(comparison, title=title), nl=False)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="labeltool")


# --- private helpers -------------------------------------------------------------------


def _state(ctx: click.Context) -> _State:
    return ctx.find_root().obj


def _shown(url: str) -> str:
    """The URL as safe to print: any password replaced by ***."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


class _progress_bar:
    """A tqdm bar on stderr driven by the core's progress(done, total) callbacks."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar = None

    def __enter__(self):
        return self

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            if total == 0:
                return
            self.bar = tqdm(
                total=total,
                desc=self.description,
                unit="row",
                file=sys.stderr,
                disable=None,
                leave=False,
            )
        if total != self.bar.total:  # an estimate that firms up as the file is read
            self.bar.total = max(total, done)
            self.bar.refresh()
        self.bar.update(done - self.bar.n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
