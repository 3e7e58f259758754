"""Images roots on remote storage, against servers the tests start on 127.0.0.1: moto's S3 in
server mode (with a slow object) and a small HTTP server, over plain http and over https with
a certificate made for the test (trusted through SSL_CERT_FILE, as a company CA would be).
Images open, render and are checked as local ones are; a missing object, a slow one, a
hostile path and a redirect out of the root are each refused with the URL and the reason.

`s3_server` and `upload` are shared with the browser test (tests/e2e/test_s3_review_browser.py).
"""

from __future__ import annotations

import datetime
import io
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from moto.server import ThreadedMotoServer
from PIL import Image
from sqlalchemy import select

from labeltool import storage
from labeltool.db import Database
from labeltool.errors import ImageUnavailable, InvalidInput, UnsafePath
from labeltool.images import load_image
from labeltool.models import Project
from labeltool.renditions import RenditionCache
from labeltool.storage import TIMEOUT_ENV_VAR, ImageProblem, images_root

BUCKET = "pics"
ROOT = f"s3://{BUCKET}/dev"
#: How long a slow object keeps the client waiting, and the timeout the slow tests set.
SLOW_SECONDS = 12.0
SHORT_TIMEOUT = "2"
CROWD = 20


# --- the servers ---------------------------------------------------------------------------


@dataclass
class Requests:
    """What a test server was asked for: (method, path, query) in order."""

    seen: list[tuple[str, str, str]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def paths(self, method: str | None = None) -> list[str]:
        return [path for m, path, _ in self.seen if method is None or m == method]

    def clear(self) -> None:
        self.seen.clear()


class _RecordingMotoServer(ThreadedMotoServer):
    """moto's threaded server, recording every request and holding any whose path holds
    "slow" until the test ends (or SLOW_SECONDS pass)."""

    def __init__(self, requests: Requests) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.requests = requests

    def _server_entry(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        moto_app = DomainDispatcherApplication(create_backend_app)
        requests = self.requests

        def app(environ, start_response):
            path = environ.get("PATH_INFO", "")
            requests.seen.append((environ["REQUEST_METHOD"], path, environ.get("QUERY_STRING")))
            if "slow" in path:
                requests.release.wait(SLOW_SECONDS)
            return moto_app(environ, start_response)

        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


@contextmanager
def s3_server() -> Iterator[tuple[str, Requests]]:
    """moto's S3 on 127.0.0.1 with fake credentials in the environment (AWS_ENDPOINT_URL
    points botocore at it); yields its URL and its request log."""
    requests = Requests()
    server = _RecordingMotoServer(requests)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", endpoint)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        images_root.cache_clear()
        try:
            yield endpoint, requests
        finally:
            requests.release.set()
            server.stop()
            images_root.cache_clear()


def upload(objects: dict[str, bytes], *, bucket: str = BUCKET) -> None:
    """Create `bucket` if needed and put each key's bytes in it (through boto3, not labeltool)."""
    import boto3

    client = boto3.client("s3")
    if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket)
    for key, data in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)


def png(size: tuple[int, int] = (40, 30), colour=(200, 20, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (1600, 1200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 90, 160)).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def s3() -> Iterator[Requests]:
    """S3 holding s3://pics/dev: a PNG, a photo, a broken file, a slow object, a crowded
    folder; and another bucket, `secret`, that no image path may reach."""
    with s3_server() as (_endpoint, requests):
        upload(
            {
                "dev/images/red.png": png(),
                "dev/images/photo.jpg": jpeg(),
                "dev/images/broken.png": b"no image at all",
                "dev/images/slow.png": png(),
                **{f"dev/many/{i:02d}.png": png((4, 4)) for i in range(CROWD)},
            }
        )
        upload({"x.png": png()}, bucket="secret")
        yield requests


@pytest.fixture
def requests(s3: Requests) -> Requests:
    """The S3 request log, emptied for the test, with the root's remembered answers dropped."""
    images_root.cache_clear()
    s3.clear()
    return s3


class _Site(BaseHTTPRequestHandler):
    """/images/<name> from `files`; slow.png waits; out.png redirects to another server,
    sneaky.png to /secret.png on this one, moved.png to an image inside the root."""

    files: dict[str, bytes] = {}
    requests: Requests
    elsewhere: str = ""

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, *, body: bool) -> None:
        self.requests.seen.append((self.command, self.path, ""))
        path = unquote(self.path)
        redirects = {
            "/images/out.png": f"{self.elsewhere}/images/red.png",
            "/images/sneaky.png": "/secret.png",
            "/images/dots.png": "/images/%2e%2e/secret.png",
            "/images/moved.png": "/images/red.png",
        }
        if path in redirects:
            self.send_response(302)
            self.send_header("Location", redirects[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/images/slow.png":
            self.requests.release.wait(SLOW_SECONDS)
        data = self.files.get(path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", f'"{hash(data)}"')
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, *args) -> None:  # quiet
        pass


@contextmanager
def _http_server(
    files: dict[str, bytes], requests: Requests, elsewhere: str = "", *, tls: Path | None = None
) -> Iterator[str]:
    """Serve `files` on 127.0.0.1; over https with the certificate and key in `tls` (PEM)."""
    handler = type("Site", (_Site,), {"files": files, "requests": requests, "elsewhere": elsewhere})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        requests.release.set()
        server.shutdown()
        server.server_close()


@dataclass
class Web:
    url: str
    requests: Requests
    outside: Requests


@pytest.fixture
def web() -> Iterator[Web]:
    """A web folder at <server>/images, and another server that a redirect may point to."""
    outside = Requests()
    inside = Requests()
    files = {
        "/images/red.png": png(),
        "/images/what?.png": png((10, 10), (0, 0, 200)),
        "/images/broken.png": b"no image at all",
        "/images/slow.png": png(),
        "/secret.png": png(),
    }
    images_root.cache_clear()
    with (
        _http_server({"/images/red.png": png()}, outside) as elsewhere,
        _http_server(files, inside, elsewhere) as url,
    ):
        yield Web(f"{url}/images", inside, outside)
    images_root.cache_clear()


# --- S3 ------------------------------------------------------------------------------------


def test_an_s3_image_opens_and_renders_through_the_cache(
    requests: Requests, tmp_path: Path
) -> None:
    """An image in S3 loads like a local one, and its rendition is made once and then served
    from memory without another GET."""
    assert load_image(ROOT, "images/red.png").size == (40, 30)
    cache = RenditionCache(tmp_path / "cache")

    first = cache.get(ROOT, "images/photo.jpg", kind="thumb")
    gets = len(requests.paths("GET"))
    again = cache.get(ROOT, "images/photo.jpg", kind="thumb")

    assert (first.width, first.height) == (192, 144) and again == first
    assert len(requests.paths("GET")) == gets
    assert cache.stats().memory_hits == 1


def test_an_s3_object_replaced_is_rendered_afresh(
    requests: Requests, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rendition cache key holds the object's ETag: a new object under the same key is
    rendered again once what S3 said of the old one has expired."""
    monkeypatch.setattr(storage, "INFO_SECONDS", 0.0)
    upload({"dev/images/edited.png": png((30, 30), (0, 0, 255))})
    cache = RenditionCache(tmp_path / "cache")
    before = cache.get(ROOT, "images/edited.png", kind="original")

    upload({"dev/images/edited.png": png((30, 30), (255, 0, 0))})
    after = cache.get(ROOT, "images/edited.png", kind="original")

    assert before != after and cache.stats().misses == 2


def test_a_missing_s3_object_names_its_url(requests: Requests) -> None:
    """An object that is not there is an ImageUnavailable naming the full s3:// URL."""
    with pytest.raises(ImageUnavailable, match=f"image file not found: {ROOT}/images/gone.png"):
        load_image(ROOT, "images/gone.png")


def test_a_slow_s3_object_times_out_with_a_clear_message(
    requests: Requests, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An object S3 takes longer than LABELTOOL_REMOTE_TIMEOUT to serve is refused after that
    timeout, naming the URL and the setting, instead of holding the page."""
    monkeypatch.setenv(TIMEOUT_ENV_VAR, SHORT_TIMEOUT)
    started = time.monotonic()

    with pytest.raises(ImageUnavailable, match=f"no answer within {SHORT_TIMEOUT} s") as caught:
        load_image(ROOT, "images/slow.png")

    assert f"{ROOT}/images/slow.png" in str(caught.value)
    assert TIMEOUT_ENV_VAR in str(caught.value)
    assert time.monotonic() - started < SLOW_SECONDS / 2


def test_check_on_s3_finds_missing_unreadable_and_slow_objects(
    requests: Requests, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Depth "exists" finds a missing object and a slow one; depth "open" also reads each
    header and refuses the object that is no image."""
    monkeypatch.setenv(TIMEOUT_ENV_VAR, SHORT_TIMEOUT)
    images = ["images/red.png", "images/photo.jpg", "images/broken.png", "images/gone.png"]
    root = images_root(ROOT)

    exists = root.check([*images, "images/slow.png"], depth="exists")
    opened = root.check(images, depth="open")

    assert exists["images/gone.png"] == ImageProblem("missing", f"{ROOT}/images/gone.png", "")
    assert exists["images/slow.png"].kind == "unreadable"
    assert "no answer within" in exists["images/slow.png"].reason
    assert set(exists) == {"images/gone.png", "images/slow.png"}
    assert set(opened) == {"images/gone.png", "images/broken.png"}
    assert opened["images/broken.png"].reason == "not an image file PIL can read"


def test_check_lists_a_crowded_folder_once_instead_of_asking_per_object(
    requests: Requests,
) -> None:
    """Checking many images of one folder costs one listing, not a request per image, and an
    image missing from the listing is reported missing."""
    images = [f"many/{i:02d}.png" for i in range(CROWD)] + ["many/absent.png"]

    problems = images_root(ROOT).check(images, depth="exists")

    assert problems == {"many/absent.png": ImageProblem("missing", f"{ROOT}/many/absent.png", "")}
    assert not [p for p in requests.paths("HEAD") if "/many/" in p]
    assert len(requests.paths("GET")) <= 3  # the probe of the root and the folder's listing


HOSTILE_ON_S3 = {
    "../secret.png": "outside",
    "images/../../x.png": "outside",
    "/secret/x.png": "outside",
    "s3://secret/x.png": "outside",
    "..\\..\\secret\\x.png": "outside",
    "images/red.png?versionId=1": "unreadable",
    "images/red.png#1": "unreadable",
}


def test_hostile_paths_on_an_s3_root_are_refused_by_join_and_check(requests: Requests) -> None:
    """`..`, absolute paths, another bucket's URL, backslashes and version marks are refused
    by both `join` and `check`, and nothing outside s3://pics/dev is ever requested."""
    root = images_root(ROOT)

    for image in HOSTILE_ON_S3:
        with pytest.raises(ImageUnavailable, match="image path"):
            root.join(image)
    problems = root.check(list(HOSTILE_ON_S3), depth="open")

    assert {image: p.kind for image, p in problems.items()} == HOSTILE_ON_S3
    assert all(path.startswith(f"/{BUCKET}") for path in requests.paths())
    assert not [p for p in requests.paths() if "secret" in p]


def test_an_unreachable_s3_root_is_one_message_not_one_per_image(
    requests: Requests, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When S3 cannot be reached at all (here: nothing listens at the endpoint), `check`
    raises once, naming the root, instead of reporting every image."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the discard port: closed
    monkeypatch.setenv(TIMEOUT_ENV_VAR, "2")
    images_root.cache_clear()

    with pytest.raises(ImageUnavailable, match=f"the images root {ROOT} cannot be read"):
        images_root(ROOT).check(["images/red.png", "images/photo.jpg"])


# --- importing a project whose images are in S3 ------------------------------------------


def _predictions(tmp_path: Path, images: list[str]) -> Path:
    path = tmp_path / "predictions.csv"
    rows = ["example_id,image,label,prediction"]
    rows += [f"ex{i},{image},cat,{'dog' if i % 2 else 'cat'}" for i, image in enumerate(images)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_import_predictions_with_an_s3_images_root(
    requests: Requests, db: Database, tmp_path: Path
) -> None:
    """The importer checks each image in S3, stores the normalised s3:// root (no credentials)
    and refuses a row whose object is missing, naming the row and the URL."""
    from labeltool.importing import import_predictions

    good = _predictions(tmp_path, ["images/red.png", "images/photo.jpg"])
    with db.begin() as session:
        import_predictions(session, good, project="remote", images_root=f"{ROOT}/")
    with db.begin() as session:
        stored = session.scalar(select(Project.images_root).where(Project.name == "remote"))
    assert stored == ROOT

    bad = _predictions(tmp_path, ["images/red.png", "images/gone.png"])
    with pytest.raises(InvalidInput, match="row 3") as caught, db.begin() as session:
        import_predictions(session, bad, project="remote", images_root=ROOT)
    assert f"{ROOT}/images/gone.png" in str(caught.value)


@pytest.mark.parametrize(
    ("image", "error", "words"),
    [
        ("../secret/x.png", UnsafePath, "points outside the images root"),
        ("/secret/x.png", UnsafePath, "is an absolute path"),
        ("s3://other-bucket/x.png", UnsafePath, "leads outside the images root"),
        ("images/red.png?versionId=1", InvalidInput, "cannot be read"),
    ],
)
def test_import_refuses_hostile_paths_on_an_s3_root(
    requests: Requests, db: Database, tmp_path: Path, image: str, error: type, words: str
) -> None:
    """A predictions file naming images outside an s3:// root is refused at that row and the
    image column, nothing is imported, and nothing outside the root is ever requested."""
    from labeltool.importing import import_predictions

    path = _predictions(tmp_path, ["images/red.png", "images/photo.jpg", image])
    with pytest.raises(error) as caught, db.begin() as session:
        import_predictions(session, path, project="hostile", images_root=ROOT)

    assert (caught.value.row, caught.value.column) == (4, "image"), str(caught.value)
    assert words in str(caught.value)
    with db.begin() as session:
        assert session.scalar(select(Project.name).where(Project.name == "hostile")) is None
    assert all(p.startswith(f"/{BUCKET}") for p in requests.paths())
    assert not [p for p in requests.paths() if "secret" in p or "other-bucket" in p]


def test_the_cli_imports_an_s3_root_and_refuses_one_with_credentials(
    requests: Requests, tmp_path: Path
) -> None:
    """`labeltool import --images-root s3://…` imports; a root holding a secret is refused in
    one line that does not repeat the secret."""
    from labeltool.cli import cli

    path = _predictions(tmp_path, ["images/red.png"])
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()

    ok = runner.invoke(
        cli, ["--db", db, "import", str(path), "--project", "p", "--images-root", ROOT]
    )
    refused = runner.invoke(
        cli,
        ["--db", db, "import", str(path), "--project", "p", "--images-root",
         f"s3://AKIA:TOPSECRET@{BUCKET}/dev"],
    )  # fmt: skip

    assert ok.exit_code == 0, ok.output
    assert refused.exit_code == 1 and "credentials" in refused.output
    assert "TOPSECRET" not in refused.output


# --- http(s) -------------------------------------------------------------------------------


def test_a_web_image_opens_and_a_redirect_inside_the_root_is_followed(web: Web) -> None:
    """An image under an http root loads; a redirect to another image under the same root is
    followed."""
    assert load_image(web.url, "red.png").size == (40, 30)
    assert load_image(web.url, "moved.png").size == (40, 30)


def test_a_name_with_a_question_mark_reaches_its_own_file(web: Web) -> None:
    """`what?.png` is asked for as `what%3F.png`, so the `?` is part of the name, not a query."""
    assert load_image(web.url, "what?.png").size == (10, 10)
    assert "/images/what%3F.png" in web.requests.paths("GET")


@pytest.mark.parametrize("image", ["out.png", "sneaky.png", "dots.png"])
def test_a_redirect_out_of_the_root_is_refused_and_not_followed(web: Web, image: str) -> None:
    """A redirect to another server, to a path outside the root's prefix or through an
    encoded `..` is refused as leading outside the images root, and never requested."""
    with pytest.raises(ImageUnavailable, match="outside the images root"):
        load_image(web.url, image)
    problems = images_root(web.url).check([image], depth="exists")

    assert problems[image].kind == "outside"
    assert web.outside.seen == []
    assert "/secret.png" not in web.requests.paths()


def test_a_missing_web_image_names_its_url(web: Web) -> None:
    """A 404 is an ImageUnavailable naming the URL, and a missing problem in `check`."""
    with pytest.raises(ImageUnavailable, match=f"image file not found: {web.url}/gone.png"):
        load_image(web.url, "gone.png")
    assert images_root(web.url).check(["gone.png", "red.png"]) == {
        "gone.png": ImageProblem("missing", f"{web.url}/gone.png", "")
    }


def test_a_slow_web_image_times_out_with_a_clear_message(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server slower than LABELTOOL_REMOTE_TIMEOUT gets a bounded wait and a message naming
    the URL; `check` reports it unreadable for the same reason."""
    monkeypatch.setenv(TIMEOUT_ENV_VAR, SHORT_TIMEOUT)
    started = time.monotonic()

    with pytest.raises(ImageUnavailable, match=f"no answer within {SHORT_TIMEOUT} s") as caught:
        load_image(web.url, "slow.png")
    problems = images_root(web.url).check(["slow.png", "broken.png"], depth="open")

    assert f"{web.url}/slow.png" in str(caught.value)
    assert time.monotonic() - started < SLOW_SECONDS
    assert "no answer within" in problems["slow.png"].reason
    assert problems["broken.png"].reason == "not an image file PIL can read"


def test_a_failure_is_remembered_briefly_so_a_page_does_not_wait_again(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second look at the slow image within a minute answers at once from what the root
    remembers, instead of waiting out the timeout again."""
    monkeypatch.setenv(TIMEOUT_ENV_VAR, SHORT_TIMEOUT)
    root = images_root(web.url)
    with pytest.raises(ImageUnavailable):
        root.version("slow.png")

    started = time.monotonic()
    with pytest.raises(ImageUnavailable, match="no answer within"):
        root.version("slow.png")
    assert time.monotonic() - started < 0.5


# --- https ---------------------------------------------------------------------------------


def _self_signed(folder: Path) -> Path:
    """A certificate for 127.0.0.1, signed by its own key, with the key in the same PEM file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labeltool test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / "localhost.pem"
    path.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An https web folder with a certificate no system trusts; yields its URL and the PEM."""
    pem = _self_signed(tmp_path)
    images_root.cache_clear()
    with _http_server({"/images/red.png": png()}, Requests(), tls=pem) as url:
        yield f"{url}/images", pem
    images_root.cache_clear()


def test_an_https_root_trusts_the_ca_the_environment_names(
    https: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An https root whose certificate is signed by a CA named in SSL_CERT_FILE loads."""
    url, pem = https
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))

    assert load_image(url, "red.png").size == (40, 30)


def test_an_https_root_with_an_untrusted_certificate_is_refused(
    https: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A certificate no trusted CA signed is refused, naming the URL, not read anyway."""
    url, _pem = https
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)

    with pytest.raises(ImageUnavailable, match="certificate") as caught:
        load_image(url, "red.png")
    assert f"{url}/red.png" in str(caught.value)


# --- the Projects page -------------------------------------------------------------------


def test_the_projects_page_refuses_an_images_root_at_a_url(
    tmp_path: Path, run_app, monkeypatch: pytest.MonkeyPatch, write_predictions
) -> None:
    """The web page does not import a project whose images root is a URL (the server's own
    credentials would reach it for whoever uses the page): it says to use the command line,
    requests nothing from the URL and creates no project."""
    from labeltool.config import IMPORT_ROOT_ENV_VAR
    from tests.conftest import make_rows

    path = write_predictions(make_rows(3, errors=1))
    monkeypatch.setenv(IMPORT_ROOT_ENV_VAR, str(path.parent))
    database = Database.open(f"sqlite:///{tmp_path / 'app.db'}")
    asked = Requests()
    try:
        with _http_server({"/images/ex0000.png": png()}, asked) as url:
            at = run_app(database, "app_pages/projects.py")
            at.text_input(key="import_project").input("remote")
            at.text_input(key="import_path").input(path.name)
            at.text_input(key="import_root").input(f"{url}/images")
            next(b for b in at.button if b.label == "Import").click().run()

        assert not at.exception, at.exception
        assert any("labeltool import" in e.value for e in at.error)
        assert asked.seen == []
        with database.begin() as session:
            assert session.scalar(select(Project.name)) is None
    finally:
        database.dispose()
