"""A reviewer's install has no torch: `pip install labeltool` serves, reviews, reports and
exports; `labeltool[predict]` adds torch for `labeltool predict`.

The check runs in a child Python where importing torch fails as it does when it is not
installed (a meta-path finder put first by a sitecustomize), so nothing torch-free may import
it, even indirectly.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from labeltool.config import REPO_ROOT, SAMPLE_DIR

#: Put first on sys.meta_path in the child: torch looks uninstalled.
NO_TORCH = textwrap.dedent(
    """
    import sys

    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NoTorch())
    """
)

#: What a reviewer does, in the child: the CLI's import, report, export, compare; the app's
#: pages through AppTest; and `predict`, which must say what to install.
REVIEWER = textwrap.dedent(
    """
    import json, os, sys
    from click.testing import CliRunner
    from streamlit.testing.v1 import AppTest
    from labeltool.cli import cli

    db = os.environ["LABELTOOL_DB"]
    sample = sys.argv[1]
    app = sys.argv[2]
    out = sys.argv[3]
    runner = CliRunner()
    results = {}
    for name, args in {
        "import 1": ["import", f"{sample}/predictions.csv", "--project", "digits", "--run", "1",
                     "--categories", f"{sample}/categories.csv"],
        "import-tags": ["import-tags", f"{sample}/reviews_run1.csv", "--project", "digits"],
        "import 2": ["import", f"{sample}/predictions_run2.csv", "--project", "digits",
                     "--run", "2"],
        "report": ["report", "--project", "digits", "--format", "json"],
        "export": ["export", "--project", "digits", "--table", "wide", "--out", out],
        "compare": ["compare", "--project", "digits", "--runs", "1", "2"],
        "predict": ["predict", f"{sample}/manifest.csv", "--model", f"{sample}/model.pt",
                    "--out", out + ".predictions.csv"],
    }.items():
        result = runner.invoke(cli, ["--db", db, *args])
        results[name] = [result.exit_code, result.output + (result.stderr or "")]
    pages = {}
    for page in ["app_pages/review.py", "app_pages/gallery.py", "app_pages/report.py",
                 "app_pages/compare.py"]:
        at = AppTest.from_file(app, default_timeout=60)
        at.session_state["reviewer"] = "ann"
        at.switch_page(page)
        at.run()
        pages[page] = [str(e) for e in at.exception]
    print(json.dumps({"cli": results, "pages": pages, "torch": "torch" in sys.modules}))
    """
)


def test_pyproject_keeps_torch_out_of_the_reviewers_install() -> None:
    """torch is only in the `predict` extra, pinned exactly as requirements.txt pins it."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("torch")]
    assert project["optional-dependencies"]["predict"] == ["torch==2.13.0"]
    assert "torch==2.13.0" in (REPO_ROOT / "requirements.txt").read_text().splitlines()


def test_a_reviewer_works_without_torch(tmp_path: Path) -> None:
    """Without torch: import, import-tags, report, export and compare succeed, the review,
    gallery, report and compare pages run without an exception, torch is never imported, and
    `predict` fails with a message naming `labeltool[predict]`."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(NO_TORCH)
    script = tmp_path / "reviewer.py"
    script.write_text(REVIEWER)
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(REPO_ROOT)]),
        "LABELTOOL_DB": f"sqlite:///{tmp_path / 'reviewer.db'}",
    }
    child = subprocess.run(
        [sys.executable, str(script), str(SAMPLE_DIR), str(REPO_ROOT / "app.py"),
         str(tmp_path / "wide.csv")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-3000:]

    seen = json.loads(child.stdout.strip().splitlines()[-1])
    cli = seen["cli"]
    for name in ("import 1", "import-tags", "import 2", "report", "export", "compare"):
        assert cli[name][0] == 0, (name, cli[name][1])
    run1, run2 = (
        _errors(SAMPLE_DIR / name) for name in ("predictions.csv", "predictions_run2.csv")
    )
    assert json.loads(cli["report"][1])["misclassified"] == len(run2)  # the latest run
    fixed, new, both = len(run1 - run2), len(run2 - run1), len(run1 & run2)
    assert f"errors fixed: {fixed}, new: {new}, in both runs: {both}" in cli["compare"][1]
    assert (tmp_path / "wide.csv").read_text().startswith("example_id,")
    assert cli["predict"][0] == 1
    assert "pip install 'labeltool[predict]'" in cli["predict"][1]
    assert "Traceback" not in cli["predict"][1]
    assert seen["pages"] == {page: [] for page in seen["pages"]}
    assert seen["torch"] is False


def test_the_blocker_really_hides_torch(tmp_path: Path) -> None:
    """The test above means something only if torch cannot be imported in its child."""
    (tmp_path / "sitecustomize.py").write_text(NO_TORCH)
    child = subprocess.run(
        [sys.executable, "-c", "import torch"],
        env=os.environ | {"PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == 1
    assert "No module named 'torch'" in child.stderr


def _errors(predictions: Path) -> set[str]:
    """The example ids a predictions file gets wrong."""
    with predictions.open(newline="", encoding="utf-8") as handle:
        return {
            row["example_id"] for row in csv.DictReader(handle) if row["label"] != row["prediction"]
        }
