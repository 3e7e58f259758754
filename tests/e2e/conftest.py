"""Fixtures for the browser tests: the real app on a temporary SQLite file holding the sample
project, served by `labeltool serve`, and Debian's Chromium driven by Playwright.

Without /usr/bin/chromium the browser tests are skipped, unless LABELTOOL_REQUIRE_E2E=1 (CI
sets it): then a missing browser is a failure, so CI cannot pass without running them.
Playwright never downloads a browser here.
"""

from __future__ import annotations

import contextlib
import csv
import os
import secrets as secrets_module
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from labeltool.config import REPO_ROOT, SAMPLE_DIR

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_ENV = "LABELTOOL_REQUIRE_E2E"
#: The project the browser tests review, imported from sample_data/.
PROJECT = "digits"


def _sample_pair() -> str:
    """The sample's confusion-pair category (key 3 in sample_data/categories.csv, e.g. 7-as-9):
    it changes whenever the sample is rebuilt, so tests read it rather than spell it."""
    with (SAMPLE_DIR / "categories.csv").open(newline="", encoding="utf-8") as handle:
        return next(row["name"] for row in csv.DictReader(handle) if row["shortcut"] == "3")


SAMPLE_PAIR = _sample_pair()
#: How long the server may take to answer its health check.
STARTUP_SECONDS = 45
#: The longest any one wait on the page may take (a rerun is well under a second).
PAGE_TIMEOUT_MS = 15_000

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@dataclass(frozen=True)
class RunningApp:
    """The app under test: where the browser goes and where the test reads the database."""

    url: str
    db_url: str
    log: Path
    process: subprocess.Popen

    def describe(self) -> str:
        """Whether the server still runs, and its log's last lines (for failure reports)."""
        code = self.process.poll()
        state = "still running" if code is None else f"exited with {code} during the test"
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        return f"the server {state}; the end of {self.log}:\n{tail}"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, or a skip (a failure when e2e tests are required)."""
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"browser tests are required ({REQUIRE_ENV}=1) but {problem}")
        pytest.skip(f"browser tests need Chromium: {problem}")
    return CHROMIUM


@pytest.fixture
def app(chromium: Path, tmp_path: Path) -> Iterator[RunningApp]:
    """`labeltool serve` on a fresh SQLite file holding the sample project; stopped afterwards."""
    folder = tmp_path / "app"
    folder.mkdir()
    db_url = _sample_database(folder)
    with serve(db_url, folder) as running:
        yield running


@pytest.fixture
def signed_in_app(chromium: Path, tmp_path: Path, oidc_provider: str) -> Iterator[RunningApp]:
    """The `app` fixture with sign-in configured: its secrets.toml has an [auth] section
    whose OpenID provider is `oidc_provider` (the mock on 127.0.0.1)."""
    folder = tmp_path / "app"
    folder.mkdir()
    db_url = _sample_database(folder)
    port = _free_port()
    secrets = folder / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets_module.token_hex(32)}"\n'
        'client_id = "labeltool"\n'
        'client_secret = "labeltool-secret"\n'
        f'server_metadata_url = "{oidc_provider}/.well-known/openid-configuration"\n',
        encoding="utf-8",
    )
    env = {
        # Only this file: a developer's own ~/.streamlit/secrets.toml must not count.
        "STREAMLIT_SECRETS_FILES": str(secrets),
        # The server asks the provider for its keys and tokens directly, never through a proxy.
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }
    with serve(db_url, folder, port=port, env=env) as running:
        yield running


@pytest.fixture
def oidc_provider() -> Iterator[str]:
    """A mock OpenID provider (oidc-provider-mock) on 127.0.0.1; its URL, the issuer. Its
    login form asks for the subject; claims for a subject are set with PUT /users/SUBJECT."""
    import oidc_provider_mock
    import werkzeug.serving

    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@contextlib.contextmanager
def serve(
    db_url: str, folder: Path, *, port: int | None = None, env: dict[str, str] | None = None
) -> Iterator[RunningApp]:
    """`labeltool serve` on `db_url` at `port` (a free one when not given; its log in
    `folder`), with `env` added to its environment; stopped afterwards."""
    port = port or _free_port()
    log = folder / "server.log"
    env = {
        **os.environ,
        # No file watcher: other files changing in the checkout must not prompt a rerun.
        "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
        **(env or {}),
    }
    labeltool = [sys.executable, "-m", "labeltool", "--db", db_url]
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [*labeltool, "serve", "--port", str(port), "--host", "127.0.0.1"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown stops streamlit too
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_healthy(server, url, log)
            yield RunningApp(url=url, db_url=db_url, log=log, process=server)
        finally:
            _stop(server)


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Browser]:
    """One headless Chromium for the session."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(
    browser: Browser, app: RunningApp, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Page]:
    """A fresh browser tab; on failure its screenshot is saved in the test's tmp dir."""
    with _tab(browser, app, request, tmp_path) as tab:
        yield tab


@pytest.fixture
def signed_in_page(
    browser: Browser, signed_in_app: RunningApp, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Page]:
    """The `page` fixture for `signed_in_app` (a fresh tab: nobody is signed in yet)."""
    with _tab(browser, signed_in_app, request, tmp_path) as tab:
        yield tab


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the test item, so `page` knows whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


# --- private helpers -------------------------------------------------------------------


def _sample_database(folder: Path) -> str:
    """A SQLite database in `folder` holding the sample project (imported with the CLI)."""
    if not (SAMPLE_DIR / "predictions.csv").exists():
        pytest.fail("sample_data/predictions.csv is missing: run `make sample`")
    db_url = f"sqlite:///{folder / 'e2e.db'}"
    labeltool = [sys.executable, "-m", "labeltool", "--db", db_url]
    imported = subprocess.run(
        [
            *labeltool,
            "import",
            str(SAMPLE_DIR / "predictions.csv"),
            "--project",
            PROJECT,
            "--categories",
            str(SAMPLE_DIR / "categories.csv"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if imported.returncode != 0:
        pytest.fail(f"`labeltool import` of the sample failed:\n{imported.stderr}")
    return db_url


@contextlib.contextmanager
def _tab(
    browser: Browser, app: RunningApp, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Page]:
    """A tab in a fresh browser context; on failure its screenshot is saved in `tmp_path`."""
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(PAGE_TIMEOUT_MS)
    yield tab
    call = request.node.stash.get(_REPORTS, {}).get("call")
    if call is not None and call.failed:
        screenshot = tmp_path / "failure.png"
        tab.screenshot(path=screenshot, full_page=True)
        print(f"screenshot of the failure: {screenshot}\n{app.describe()}")
    context.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(server: subprocess.Popen, url: str, log: Path) -> None:
    # No proxy: a proxy set in the environment must not see requests to 127.0.0.1.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"`labeltool serve` exited with {server.returncode}:\n{log.read_text()}")
        try:
            with opener.open(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(f"the app did not answer at {url} within {STARTUP_SECONDS}s:\n{log.read_text()}")


def _stop(server: subprocess.Popen) -> None:
    """Stop `labeltool serve` and the streamlit process it started (one process group)."""
    group = server.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        server.poll()  # reap our child, so only live processes count
        if not _group_running(group):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    server.wait()


def _group_running(group: int) -> bool:
    """Whether any process of the group is still running (zombies left to init do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, process_group = fields[0], int(fields[2])
        if process_group == group and state != "Z":
            return True
    return False
