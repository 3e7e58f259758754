"""Who the reviewer is, driven with AppTest: a typed name when sign-in is not configured (the
default), the signed-in identity when .streamlit/secrets.toml has an [auth] section.

AppTest cannot run a real OpenID Connect flow; it seeds `st.user` instead. The real flow
through a provider runs in Chromium in tests/e2e/test_sign_in.py.
"""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from app_pages.common import WITHOUT_SIGN_IN
from labeltool.config import APP_PATH
from labeltool.db import Database
from tests.app_scenario import AppProject, open_app_project

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")

#: An [auth] section as Streamlit documents it (AppTest never calls the provider).
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "not-a-secret",
    "client_id": "labeltool",
    "client_secret": "labeltool",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}


@pytest.fixture
def project(db: Database, write_predictions, monkeypatch: pytest.MonkeyPatch) -> AppProject:
    """Project "run1": 6 dev examples, 4 misclassified, "blurry" among its categories."""
    return open_app_project(db, write_predictions, monkeypatch, examples=6, errors=4)


def test_without_sign_in_the_sidebar_says_names_are_typed(project: AppProject) -> None:
    """Not configured: the Reviewer box is there, with a caption saying nobody is checked."""
    at = _app()

    assert not at.exception
    assert at.sidebar.text_input(key="reviewer").label == "Reviewer"
    assert WITHOUT_SIGN_IN in [c.value for c in at.sidebar.caption]
    assert not [b for b in at.button if b.key in {"sign_in", "sign_out"}]


def test_without_sign_in_the_typed_name_is_on_the_tag(project: AppProject) -> None:
    """Not configured: the name typed in the sidebar is recorded on the tag, as before."""
    at = _app()
    at.sidebar.text_input(key="reviewer").input("  bob  ").run()

    pk = _tag_blurry(at, project)

    assert not at.exception
    assert (pk, project.blurry, "bob") in project.tags()


def test_without_sign_in_the_link_may_name_the_reviewer(project: AppProject) -> None:
    """Not configured: ?reviewer=NAME fills the Reviewer box, as before."""
    at = AppTest.from_file(str(APP_PATH), default_timeout=30)
    at.query_params["reviewer"] = "cy"

    at.run()

    assert at.sidebar.text_input(key="reviewer").value == "cy"


def test_signed_in_the_identity_is_the_reviewer(project: AppProject) -> None:
    """Configured and signed in: no Reviewer box, the sidebar names the identity, and the tag
    carries it, whatever a link or the session says the reviewer is."""
    at = _app(user={"is_logged_in": True, "email": "ann@example.org", "sub": "ann-1"})
    at.query_params["reviewer"] = "mallory"
    at.session_state["reviewer"] = "mallory"
    at.run()

    pk = _tag_blurry(at, project)

    assert not at.exception
    assert "reviewer" not in {t.key for t in at.sidebar.text_input}
    assert "Signed in as ann@example.org" in [t.value for t in at.sidebar.text]
    assert [b.label for b in at.sidebar.button if b.key == "sign_out"] == ["Sign out"]
    assert WITHOUT_SIGN_IN not in [c.value for c in at.sidebar.caption]
    assert (pk, project.blurry, "ann@example.org") in project.tags()
    assert not any(reviewer == "mallory" for _pk, _category, reviewer in project.tags())


def test_signed_in_without_an_email_the_subject_names_the_reviewer(project: AppProject) -> None:
    """A provider that sends no email or name: the subject id is the reviewer."""
    at = _app(user={"is_logged_in": True, "sub": "user-42"})

    pk = _tag_blurry(at, project)

    assert (pk, project.blurry, "user-42") in project.tags()


@pytest.mark.parametrize("page", ["app_pages/gallery.py", "app_pages/report.py"])
def test_signed_out_every_page_is_the_sign_in_screen(project: AppProject, page: str) -> None:
    """Configured and nobody signed in: a sign-in button and nothing else, on any page."""
    at = _app(user={"is_logged_in": False}, page=page)

    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert [t.value for t in at.title] == ["Sign in"]
    assert not at.sidebar.selectbox
    assert not at.sidebar.text_input


# --- helpers -------------------------------------------------------------------------------


def _app(*, user: dict | None = None, page: str | None = None) -> AppTest:
    """The app run once; with `user`, sign-in is configured and st.user is `user`."""
    at = AppTest.from_file(str(APP_PATH), default_timeout=30)
    if user is not None:
        at.secrets["auth"] = AUTH
        at.user = user
    if page is not None:
        at.switch_page(page)
    return at.run()


def _tag_blurry(at: AppTest, project: AppProject) -> int:
    """Tag the example on the review screen "blurry" as the browser's screen does: the action
    names the reviewer the page gave the screen. Returns the example's pk."""
    data = _screen_data(at)
    action = {"seq": 1, "pk": data["anchor"], "kind": "tag", "category": project.blurry}
    at.session_state[f"review_screen_{project.id}"] = {
        "screen": {
            "client": "test-client",
            "epoch": data["epoch"],
            "showing": data["anchor"],
            "actions": [{**action, "on": True, "reviewer": data["reviewer"]}],
        }
    }
    at.run()
    return data["anchor"]


def _screen_data(at: AppTest) -> dict:
    """What the review page sent its screen (the browser's half of the page)."""
    elements = [e for e in at.main if type(e).__name__ == "UnknownElement"]
    [screen] = [e.proto for e in elements if e.proto.component_name.endswith("review_screen")]
    return json.loads(screen.json)


def test_signed_in_a_tampered_action_still_carries_the_identity(project: AppProject) -> None:
    """The browser names the reviewer on each action; signed in, a name other than the
    identity (a tampered page) is replaced by it, on the review screen and in the Gallery."""
    at = _app(user={"is_logged_in": True, "email": "ann@example.org", "sub": "ann-1"})
    data = _screen_data(at)
    at.session_state[f"review_screen_{project.id}"] = {
        "screen": {
            "client": "tampered",
            "epoch": data["epoch"],
            "showing": data["anchor"],
            "actions": [
                {
                    "seq": 1,
                    "pk": data["anchor"],
                    "kind": "tag",
                    "category": project.blurry,
                    "on": True,
                    "reviewer": "mallory",
                }
            ],
        }
    }
    at.run()

    gallery = _app(
        user={"is_logged_in": True, "email": "ann@example.org", "sub": "ann-1"},
        page="app_pages/gallery.py",
    )
    other = next(pk for pk in project.queue() if pk != data["anchor"])
    gallery.session_state["gallery_grid"] = {
        "grid": {
            "client": "tampered",
            "actions": [
                {
                    "seq": 1,
                    "kind": "tag",
                    "pks": [other],
                    "category": project.mislabeled,
                    "reviewer": "mallory",
                }
            ],
        }
    }
    gallery.run()

    assert not at.exception and not gallery.exception
    assert project.tags() == {
        (data["anchor"], project.blurry, "ann@example.org"),
        (other, project.mislabeled, "ann@example.org"),
    }
