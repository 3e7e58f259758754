"""The images root: one per normalised root, the safe join for local folders and URLs alike,
credentials never taken into a root that would be stored, and the local `check` the importer
uses (missing, a link leading out, a name no file system holds, not an image)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from PIL import Image

from labeltool.errors import ImageUnavailable, InvalidInput
from labeltool.storage import CHECK_DEPTHS, ImageProblem, ImagesRoot, images_root

LONG_NAME = "x" * 300 + ".png"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    (folder / "cats").mkdir(parents=True)
    Image.new("L", (8, 8), 200).save(folder / "cats" / "a.png")
    Image.new("RGB", (16, 12), (0, 90, 0)).save(folder / "b.jpg")
    (folder / "broken.png").write_bytes(b"no image at all")
    Image.new("L", (4, 4)).save(tmp_path / "secret.png")
    (folder / "link.png").symlink_to(tmp_path / "secret.png")
    return folder


# --- one root per normalised root ------------------------------------------------------


def test_a_local_root_is_resolved_and_shared(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative folder, the same folder absolute and as a file:// URL are one root, whose
    url is the resolved absolute path."""
    monkeypatch.chdir(root.parent)

    first = images_root("images")
    assert first.is_local and first.url == str(root.resolve())
    assert images_root(root) is first
    assert images_root(f"file://{root}") is first
    assert images_root(first) is first


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("s3://pics/dev/", "s3://pics/dev"),
        ("S3://pics/dev//", "s3://pics/dev"),
        ("s3://pics", "s3://pics"),
        ("HTTPS://Example.COM/images/", "https://example.com/images"),
        ("gs://bucket/prefix/", "gs://bucket/prefix"),
        ("az://container/prefix", "az://container/prefix"),
    ],
)
def test_a_url_root_loses_its_trailing_slash_and_is_shared(given: str, url: str) -> None:
    """A URL root is normalised (scheme and host in lower case, no trailing slash), and the
    same normalised root is the same object, not a new connection."""
    found = images_root(given)

    assert not found.is_local and found.url == url
    assert images_root(url) is found


@pytest.mark.parametrize(
    ("given", "refused", "secret"),
    [
        ("s3://AKIAEXAMPLE:wJalrXUtnFEMI@pics/dev", "credentials", "wJalrXUtnFEMI"),
        ("https://ann:hunter2@example.com/images", "credentials", "hunter2"),
        ("https://example.com/images?sig=TOKEN123&se=2030", "query string", "TOKEN123"),
        ("s3://pics/dev?versionId=abc", "query string", "abc"),
        ("https://example.com/images#TOKEN456", "query string", "TOKEN456"),
    ],
)
def test_a_root_holding_credentials_is_refused_without_repeating_them(
    given: str, refused: str, secret: str
) -> None:
    """A root with user:secret@ or a query string (a signed token) would be stored in the
    database: it is refused, saying to use the environment, and the message does not hold
    the secret."""
    with pytest.raises(InvalidInput, match=refused) as caught:
        images_root(given)

    assert "environment" in str(caught.value)
    assert secret not in str(caught.value)


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("ftp://example.com/images", "not from ftp://"),
        ("s3://", "names no bucket"),
        ("s3://pics/../other", "'..'"),
        ("https://example.com/a/%2e%2e/b", "'..'"),
        ("s3://pics\\dev", "backslash"),
    ],
)
def test_a_root_labeltool_cannot_use_is_refused(given: str, reason: str) -> None:
    """An unknown scheme, a URL without bucket or host, and a root with dot segments or a
    backslash are refused with the reason."""
    with pytest.raises(InvalidInput, match=reason):
        images_root(given)


# --- the safe join ---------------------------------------------------------------------


HOSTILE = ["../secret.png", "cats/../../secret.png", "/etc/passwd", "C:\\Windows\\x.png"]
HOSTILE += ["..\\secret.png", "\\\\server\\share\\x.png", ""]


@pytest.mark.parametrize("image", HOSTILE)
@pytest.mark.parametrize("where", ["local", "s3://pics/dev", "https://example.com/images"])
def test_join_refuses_a_path_leaving_any_root(root: Path, where: str, image: str) -> None:
    """`..` above the root, an absolute or drive path, backslash tricks and an empty path are
    refused by the join of a local, an S3 and an https root alike."""
    found = images_root(root if where == "local" else where)

    with pytest.raises(ImageUnavailable, match="image path"):
        found.join(image)


@pytest.mark.parametrize("image", ["s3://other-bucket/x.png", "https://evil.example/x.png"])
@pytest.mark.parametrize("where", ["s3://pics/dev", "https://example.com/images"])
def test_join_refuses_a_url_as_an_image_path_on_a_remote_root(where: str, image: str) -> None:
    """An image path that is itself a URL (another bucket, another host) is refused on a
    remote root instead of being read as a name inside it."""
    with pytest.raises(ImageUnavailable, match="is a URL"):
        images_root(where).join(image)


@pytest.mark.parametrize(
    ("image", "url"),
    [
        ("cats/a b.png", "https://example.com/images/cats/a%20b.png"),
        ("what?.png", "https://example.com/images/what%3F.png"),
        ("tag#1.png", "https://example.com/images/tag%231.png"),
        ("%2e%2e/secret.png", "https://example.com/images/%252e%252e/secret.png"),
        ("100%.png", "https://example.com/images/100%25.png"),
        ("dir\\x.png", "https://example.com/images/dir/x.png"),
    ],
)
def test_an_https_join_encodes_each_segment(image: str, url: str) -> None:
    """`?`, `#`, `%` and spaces in a name are percent-encoded, so they stay part of the name and
    cannot start a query, a fragment or an encoded `..`."""
    assert images_root("https://example.com/images/").join(image) == url


def test_an_s3_join_keeps_names_literal_and_refuses_version_marks() -> None:
    """On S3 a name is the object's key as written (`%2e%2e` is no `..`), but `?` and `#`,
    which fsspec reads as a version of another object, are refused."""
    found = images_root("s3://pics/dev")

    assert found.join("cats/a.png") == "s3://pics/dev/cats/a.png"
    assert found.join("%2e%2e/x.png") == "s3://pics/dev/%2e%2e/x.png"
    for image in ("a.png?versionId=1", "a#b.png"):
        with pytest.raises(ImageUnavailable, match="'\\?' or '#'"):
            found.join(image)


def test_a_local_join_and_local_path(root: Path) -> None:
    """A local join is the root joined with the normalised path; `local_path` refuses a link
    leading out of the root, and a URL root has no local path."""
    found = images_root(root)

    assert found.join("cats\\a.png") == str(root / "cats" / "a.png")
    assert found.local_path("cats/./a.png") == root / "cats" / "a.png"
    with pytest.raises(ImageUnavailable, match="outside the images root"):
        found.local_path("link.png")
    with pytest.raises(ImageUnavailable, match="not a local folder"):
        images_root("s3://pics/dev").local_path("a.png")


# --- open and version ------------------------------------------------------------------


def test_open_reads_the_bytes_and_names_a_missing_file(root: Path) -> None:
    """`open` gives the file's bytes; a missing file is an ImageUnavailable naming its path."""
    found = images_root(root)

    with found.open("b.jpg") as stream:
        assert stream.read() == (root / "b.jpg").read_bytes()
    with pytest.raises(ImageUnavailable, match="not found") as caught:
        found.open("gone.png").__enter__()
    assert str(root / "gone.png") in str(caught.value)


def test_version_changes_when_the_file_does(root: Path) -> None:
    """The version (size and modification time) of a local file changes when it is saved
    again with other bytes, and is refused for a link leading out."""
    found = images_root(root)
    before = found.version("b.jpg")
    stat = (root / "b.jpg").stat()

    Image.new("RGB", (20, 12), (200, 0, 0)).save(root / "b.jpg")
    os.utime(root / "b.jpg", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    assert found.version("b.jpg") != before
    with pytest.raises(ImageUnavailable):
        found.version("link.png")


# --- the local check -------------------------------------------------------------------


def test_check_exists_finds_missing_links_out_and_long_names(root: Path) -> None:
    """Depth "exists" reports a missing file, a link that leads out of the root and a name no
    file system holds, each with the path tried, and nothing else (not the broken PNG)."""
    images = ["cats/a.png", "b.jpg", "broken.png", "gone.png", "link.png", LONG_NAME]

    problems = images_root(root).check(images, depth="exists")

    assert set(problems) == {"gone.png", "link.png", LONG_NAME}
    assert problems["gone.png"] == ImageProblem("missing", str(root / "gone.png"), "")
    assert problems["link.png"].kind == "outside"
    assert problems["link.png"].location == str(root / "link.png")
    assert problems[LONG_NAME].kind == "unreadable"
    assert "file systems allow 255" in problems[LONG_NAME].reason


def test_check_open_also_reads_each_header(root: Path) -> None:
    """Depth "open" also refuses a file that is no image, with Pillow's reason, as the
    importer always did."""
    problems = images_root(root).check(["cats/a.png", "b.jpg", "broken.png"], depth="open")

    assert problems == {
        "broken.png": ImageProblem(
            "unreadable", str(root / "broken.png"), "not an image file PIL can read"
        )
    }


def test_check_open_refuses_a_decompression_bomb(root: Path) -> None:
    """A small PNG that decodes to 9000 x 9000 pixels is unreadable at depth "open"."""
    Image.new("1", (9000, 9000)).save(root / "bomb.png")

    problems = images_root(root).check(["bomb.png"], depth="open")

    assert "decompression bomb" in problems["bomb.png"].reason


def test_check_none_touches_nothing(tmp_path: Path) -> None:
    """Depth "none" reports nothing, even for a root that does not exist."""
    assert images_root(tmp_path / "nowhere").check(["a.png"], depth="none") == {}


def test_check_refuses_an_unknown_depth(root: Path) -> None:
    """A depth other than exists, open and none is a programming error, said plainly."""
    assert CHECK_DEPTHS == ("exists", "open", "none")
    with pytest.raises(ValueError, match="unknown check depth"):
        images_root(root).check(["b.jpg"], depth="deep")


def test_check_reports_progress_up_to_the_total_and_keeps_input_order(root: Path) -> None:
    """Every image is checked once across the worker threads, progress counts up to the
    total from the calling thread, and the problems come in the order given."""
    for i in range(300):
        Image.new("L", (2, 2)).save(root / f"n{i:03d}.png")
    images = [f"n{i:03d}.png" for i in range(300)] + [f"gone{i}.png" for i in range(5, 0, -1)]
    seen: list[tuple[int, int]] = []

    problems = images_root(root).check(
        images, depth="open", workers=4, progress=lambda done, total: seen.append((done, total))
    )

    assert list(problems) == [f"gone{i}.png" for i in range(5, 0, -1)]
    assert seen[0] == (0, 305) and seen[-1] == (305, 305)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_the_interface_is_one_class(root: Path) -> None:
    """Local and remote roots are both ImagesRoot, so callers type against one class."""
    assert isinstance(images_root(root), ImagesRoot)
    assert isinstance(images_root("s3://pics/dev"), ImagesRoot)


# --- object stores whose package is missing --------------------------------------------


@pytest.mark.parametrize(("root_url", "package"), [("gs://b/p", "gcsfs"), ("az://c/p", "adlfs")])
def test_a_store_whose_package_is_missing_says_what_to_install(root_url: str, package: str) -> None:
    """gs:// and az:// roots need gcsfs and adlfs, which are not installed by default: opening
    or checking an image says `pip install <package>` instead of failing with a traceback."""
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed here")
    found = images_root(root_url)

    with pytest.raises(ImageUnavailable, match=f"pip install {package}"):
        found.open("a.png").__enter__()
    with pytest.raises(ImageUnavailable, match=f"pip install {package}"):
        found.check(["a.png"])
