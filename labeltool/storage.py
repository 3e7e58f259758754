"""Where a project's images live, and the one safe way to reach an image from its root.

An images root is a local folder or a URL fsspec reaches: `s3://bucket/prefix` (s3fs),
`gs://bucket/prefix` (gcsfs), `az://container/prefix` (adlfs), `https://host/prefix`.
`images_root(root)` gives the one `ImagesRoot` for it; every image path a file names
(predictions, manifests, `import-tags`, folders) and every image the app opens goes through
its `join`: `safe_image_path` first (relative, forward slashes, never above the root), then
the root's own rules (a symlink may not lead out of a folder, an http redirect may not leave
the root's host and prefix, a URL's segments are percent-encoded so `?`, `#` and `%` stay
part of the name).

Credentials come from the usual environment (AWS_* variables and profiles, Google's and
Azure's own; SSL_CERT_FILE for a company CA), never from the root: the root is stored in
the database, so a root holding `user:secret@` or a query string (a signed token) is
refused. Every remote call has a deadline (LABELTOOL_REMOTE_TIMEOUT seconds, default 10)
and a slow or missing object is an `ImageUnavailable` naming its URL. What an object store
says about an object (its size and ETag) is kept for INFO_SECONDS, so a page that shows the
same images again asks nothing.
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
import posixpath
import re
import ssl
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Literal
from urllib.parse import quote, unquote, urljoin, urlsplit

from labeltool.errors import ImageUnavailable, InvalidInput
from labeltool.limits import control_character, shown

#: How thoroughly `ImagesRoot.check` looks: the file or object is there; it is also an image
#: whose header Pillow reads (within the pixel limit); nothing at all.
CHECK_DEPTHS = ("exists", "open", "none")
#: The longest file name (one path component) and whole path Linux file systems accept, in bytes.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4095
#: The longest object name S3, Google Cloud Storage and Azure Blob Storage accept, in bytes.
MAX_KEY_BYTES = 1024
#: Seconds any one remote call may take, retries included, unless the environment says.
TIMEOUT_ENV_VAR = "LABELTOOL_REMOTE_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 10.0
#: The most bytes read from remote storage for one image: a 64-megapixel image (the pixel
#: limit images.py holds) takes 256 MB even uncompressed.
MAX_REMOTE_IMAGE_BYTES = 256 * 2**20
#: The bytes read to check an image's header; a file whose header runs longer is read whole.
HEADER_BYTES = 256 * 2**10
#: How long what an object store said about an object (or that it is missing) is believed.
INFO_SECONDS = 60.0
INFO_ENTRIES = 50_000
#: A folder from which at least this many images are checked is listed once instead.
LIST_AT_LEAST = 16
#: Redirects followed inside an http(s) root before giving up.
MAX_REDIRECTS = 5
#: The package each object store needs, and the URL schemes that name it.
STORE_PACKAGES = {"s3": "s3fs", "gs": "gcsfs", "az": "adlfs"}
STORE_SCHEMES = {"s3": "s3", "gs": "gs", "gcs": "gs", "az": "az", "abfs": "az", "abfss": "az"}
HTTP_SCHEMES = ("http", "https")

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
#: An image path that starts like a URL (`s3:`, `https:`): never a name inside a remote root.
_SCHEME_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(/|$)")


def safe_image_path(image: str) -> str:
    """Normalise `image` to a relative forward-slash path, or raise ValueError if it escapes."""
    if bad := control_character(image):
        raise ValueError(f"cannot hold the control character {bad}")
    cleaned = image.strip().replace("\\", "/")
    if not cleaned:
        raise ValueError("is empty")
    pure = PurePosixPath(cleaned)
    if pure.is_absolute() or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise ValueError(f"{shown(image)} is an absolute path; give it relative to the images root")
    parts = [p for p in pure.parts if p not in ("", ".")]
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise ValueError(f"{shown(image)} points outside the images root")
    return os.path.normpath("/".join(parts)).replace(os.sep, "/")


def unusable_name(path: str | os.PathLike[str]) -> str | None:
    """Why no file system can hold `path` (a name over 255 bytes, a path over 4095), or None.

    Checked before any system call, which would fail with ENAMETOOLONG.
    """
    try:
        encoded = [os.fsencode(part) for part in Path(path).parts]
    except UnicodeEncodeError:
        return "the file name is not valid text for the file system"
    for part, raw in zip(Path(path).parts, encoded, strict=True):
        if len(raw) > MAX_NAME_BYTES:
            return (
                f"the file name '{part[:40]}…' is {len(raw):,} bytes long; "
                f"file systems allow {MAX_NAME_BYTES}"
            )
    total = len(os.fsencode(os.fspath(path)))
    if total > MAX_PATH_BYTES:
        return f"the path is {total:,} bytes long; file systems allow {MAX_PATH_BYTES:,}"
    return None


def remote_timeout() -> float:
    """Seconds a remote call may take: $LABELTOOL_REMOTE_TIMEOUT, else 10."""
    raw = os.environ.get(TIMEOUT_ENV_VAR, "").strip()
    try:
        seconds = float(raw) if raw else DEFAULT_TIMEOUT_SECONDS
    except ValueError:
        return DEFAULT_TIMEOUT_SECONDS
    return seconds if seconds > 0 else DEFAULT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class ImageProblem:
    """Why one image of a check cannot be used."""

    #: outside = a path, a symlink or a redirect leading out of the root.
    kind: Literal["missing", "outside", "unreadable"]
    #: The full path or URL tried, for the message.
    location: str
    #: e.g. "not an image file PIL can read"; "" for missing.
    reason: str


def images_root(root: str | os.PathLike[str] | ImagesRoot) -> ImagesRoot:
    """The images root at `root`, a local folder or a URL (one object per normalised root).

    Raises InvalidInput for a URL labeltool cannot use or will not store (credentials or a
    query string in it, an unknown scheme). Nothing is read: a missing folder or bucket shows
    when its images are opened or checked.
    """
    if isinstance(root, ImagesRoot):
        return root
    text = os.fspath(root)
    found = _URL.match(text)
    if found is None:
        return _root_at("file", str(Path(text).resolve()))
    scheme = found.group(1).lower()
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise InvalidInput(f"images root {_without_secrets(text)}: names another machine")
        return _root_at("file", str(Path(unquote(parts.path)).resolve()))
    return _root_at(*_normalised_url(text, scheme))


class ImagesRoot:
    """A folder or URL that a project's image paths are relative to (see `images_root`)."""

    #: An absolute resolved local path, or a URL without a trailing slash.
    url: str
    is_local: bool

    def join(self, image: str) -> str:
        """The full path or URL of `image`, or ImageUnavailable saying why it may not be reached."""
        raise NotImplementedError

    def local_path(self, image: str) -> Path:
        """The file behind `image` in a local root (a symlink leading out is refused)."""
        raise ImageUnavailable(f"the images root {self.url} is not a local folder")

    @contextmanager
    def open(self, image: str) -> Iterator[BinaryIO]:
        """`image`'s bytes, seekable; ImageUnavailable naming the location (missing, denied,
        timed out, too large)."""
        raise NotImplementedError
        yield  # pragma: no cover

    def version(self, image: str) -> str:
        """A cheap identity of `image`'s content for cache keys (size and mtime, or ETag)."""
        raise NotImplementedError

    def check(
        self,
        images: Sequence[str],
        *,
        depth: str = "exists",
        workers: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, ImageProblem]:
        """The problems of `images` (distinct `safe_image_path`-normalised paths), each looked
        at once, in parallel: "exists" (the file or object is there), "open" (and Pillow reads
        its header within the pixel limit), "none" (nothing is touched). Only the images with
        a problem are in the result. `progress(done, total)` is called from this thread.

        A remote root that cannot be listed at all (denied, no credentials, unreachable) raises
        ImageUnavailable once instead of naming every image.
        """
        if depth not in CHECK_DEPTHS:
            raise ValueError(f"unknown check depth {depth!r}; use one of {CHECK_DEPTHS}")
        images = list(images)
        if depth == "none" or not images:
            return {}
        known = self._prepare_check(images)
        workers = max(1, workers or self._default_workers)
        size = max(1, min(64, len(images) // (workers * 4) or 1))
        chunks = [images[i : i + size] for i in range(0, len(images), size)]
        problems: dict[str, ImageProblem] = {}
        done = 0
        if progress:
            progress(0, len(images))

        def check_chunk(chunk: list[str]) -> list[tuple[str, ImageProblem | None]]:
            return [(image, self._problem(image, depth, known)) for image in chunk]

        with ThreadPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
            for future in as_completed([pool.submit(check_chunk, c) for c in chunks]):
                for image, problem in future.result():
                    if problem is not None:
                        problems[image] = problem
                    done += 1
                if progress:
                    progress(done, len(images))
        return {image: problems[image] for image in images if image in problems}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # --- what each kind of root says -------------------------------------------------------

    _default_workers = 8

    def _prepare_check(self, images: list[str]) -> dict[str, Any] | None:
        """Anything the per-image checks share (a remote root's listings), or None."""
        return None

    def _problem(self, image: str, depth: str, known: dict[str, Any] | None) -> ImageProblem | None:
        raise NotImplementedError


class LocalRoot(ImagesRoot):
    """A folder on this machine."""

    is_local = True
    _default_workers = min(32, (os.cpu_count() or 1) + 4)

    def __init__(self, url: str) -> None:
        self.url = url
        self._folder = Path(url)

    def join(self, image: str) -> str:
        return os.path.join(self.url, _relative(image))

    def local_path(self, image: str) -> Path:
        path = Path(self.join(image)).resolve()
        if not path.is_relative_to(self._folder):
            raise ImageUnavailable(f"image '{image}' leads outside the images root '{self.url}'")
        return path

    @contextmanager
    def open(self, image: str) -> Iterator[BinaryIO]:
        path = self.local_path(image)
        if reason := unusable_name(path):
            raise ImageUnavailable(f"image file cannot be read: {path} ({reason})")
        if not os.path.isfile(path):
            raise ImageUnavailable(f"image file not found: {path}")
        try:
            handle = open(path, "rb")  # noqa: SIM115  (closed below, after the block)
        except OSError as exc:
            raise ImageUnavailable(
                f"image file cannot be read: {path} ({exc.strerror or exc})"
            ) from None
        with handle:
            yield handle

    def version(self, image: str) -> str:
        path = self.local_path(image)
        if reason := unusable_name(path):
            raise ImageUnavailable(f"image file cannot be read: {path} ({reason})")
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise ImageUnavailable(f"image file not found: {path}") from None
        except OSError as exc:
            raise ImageUnavailable(
                f"image file cannot be read: {path} ({exc.strerror or exc})"
            ) from None
        return f"{stat.st_size}:{stat.st_mtime_ns}"

    def _problem(self, image: str, depth: str, known: dict[str, Any] | None) -> ImageProblem | None:
        try:
            candidate = self.join(image)
        except _Refused as exc:
            return ImageProblem(exc.kind, os.path.join(self.url, image), exc.reason)
        if reason := unusable_name(candidate):
            return ImageProblem("unreadable", candidate, reason)
        if not os.path.isfile(candidate):
            return ImageProblem("missing", candidate, "")
        if not Path(candidate).resolve().is_relative_to(self._folder):
            return ImageProblem("outside", candidate, "a link that leads outside the images root")
        if depth == "open":
            from labeltool.images import check_image  # labeltool.images joins through us

            if reason := check_image(candidate):
                return ImageProblem("unreadable", candidate, reason)
        return None


class RemoteRoot(ImagesRoot):
    """An object store prefix or a web folder, read through fsspec's event loop, each call
    bounded by `remote_timeout()`."""

    is_local = False
    _default_workers = 16

    def __init__(self, url: str, scheme: str, path: str) -> None:
        self.url = url
        self.scheme = scheme
        #: The root as the file system names it: `bucket/prefix`, or the URL for http(s).
        self.path = path
        self._lock = threading.Lock()
        self._infos: OrderedDict[str, tuple[float, dict | BaseException]] = OrderedDict()

    def join(self, image: str) -> str:
        return f"{self.url}/{self._relative(image)}"

    @contextmanager
    def open(self, image: str) -> Iterator[BinaryIO]:
        location = self.join(image)
        info = self._info(image, location)
        size = info.get("size")
        if isinstance(size, int) and size > MAX_REMOTE_IMAGE_BYTES:
            raise ImageUnavailable(f"image file cannot be read: {location} ({_too_large(size)})")
        try:
            data = self._run(lambda: self._read(image, None))
        except Exception as exc:
            raise _unavailable(exc, location, image, self.url) from None
        with io.BytesIO(data) as stream:
            yield stream

    def version(self, image: str) -> str:
        info = self._info(image, self.join(image))
        tags = ("ETag", "etag", "md5Hash", "generation", "LastModified", "last_modified")
        tag = next((info[t] for t in tags if info.get(t)), "")
        return f"{info.get('size', '')}|{tag}"

    # --- the check ---------------------------------------------------------------------------

    def _problem(self, image: str, depth: str, known: dict[str, Any] | None) -> ImageProblem | None:
        try:
            location = self.join(image)
        except _Refused as exc:
            return ImageProblem(exc.kind, f"{self.url}/{image}", exc.reason)
        listed = (known or {}).get(posixpath.dirname(image))
        try:
            if listed is not None:
                info = listed.get(posixpath.basename(image))
                if info is None:
                    return ImageProblem("missing", location, "")
                self._remember(image, info)
            else:
                info = self._run(lambda: self._stat(image))
                self._remember(image, info)
            if depth == "open":
                return self._header_problem(image, location, info)
        except Exception as exc:
            self._remember(image, exc)
            kind, reason = _classified(exc, self.url)
            return ImageProblem(kind, location, reason)
        return None

    def _header_problem(self, image: str, location: str, info: dict) -> ImageProblem | None:
        from labeltool.images import check_image  # labeltool.images joins through us

        size = info.get("size")
        if isinstance(size, int) and size > MAX_REMOTE_IMAGE_BYTES:
            return ImageProblem("unreadable", location, _too_large(size))
        head = self._run(lambda: self._read(image, HEADER_BYTES))
        reason = check_image(io.BytesIO(head))
        if reason and len(head) >= HEADER_BYTES:  # the header may run past what was read
            reason = check_image(io.BytesIO(self._run(lambda: self._read(image, None))))
        return ImageProblem("unreadable", location, reason) if reason else None

    def _prepare_check(self, images: list[str]) -> dict[str, Any] | None:
        self._probe()
        folders: dict[str, int] = defaultdict(int)
        for image in images:
            folders[posixpath.dirname(image)] += 1
        crowded = [folder for folder, count in folders.items() if count >= LIST_AT_LEAST]
        listings: dict[str, dict[str, dict]] = {}
        for folder in crowded:
            try:
                listings[folder] = self._run(lambda f=folder: self._list(f))
            except NotImplementedError:
                return None  # a web folder cannot be listed: each image is asked for
            except Exception:  # noqa: S112  (each image of the folder is asked for instead)
                continue
        return listings

    # --- the storage-specific calls (coroutines on fsspec's loop) --------------------------

    def _probe(self) -> None:
        """Raise ImageUnavailable if the root cannot be reached at all (a missing root is
        no such problem: its images are each missing)."""

    async def _stat(self, image: str) -> dict:
        """What the store says of `image`: at least its size; FileNotFoundError if absent."""
        raise NotImplementedError

    async def _read(self, image: str, limit: int | None) -> bytes:
        """`image`'s first `limit` bytes, or all of them."""
        raise NotImplementedError

    async def _list(self, folder: str) -> dict[str, dict]:
        """Name -> what the store says, for the objects directly in `folder` of the root."""
        raise NotImplementedError

    def _loop(self) -> asyncio.AbstractEventLoop:
        raise NotImplementedError

    # --- helpers -----------------------------------------------------------------------------

    def _relative(self, image: str) -> str:
        relative = _relative(image)
        if relative == ".":
            raise _Refused("outside", f"{shown(image)} names the images root itself")
        if _SCHEME_LIKE.match(relative):
            raise _Refused("outside", f"{shown(image)} is a URL; give it relative to the root")
        return relative

    def _run(self, make: Callable[[], Any]) -> Any:
        """Run the coroutine `make()` on fsspec's loop, cancelled after `remote_timeout()`."""
        from fsspec.asyn import sync

        return sync(self._loop(), _bounded, make, remote_timeout())

    def _info(self, image: str, location: str) -> dict:
        """What the store says of `image`, believed for INFO_SECONDS (a failure too, so a
        missing or slow object costs one wait a minute, not one per page)."""
        now = time.monotonic()
        with self._lock:
            found = self._infos.get(image)
        if found is None or found[0] < now:
            try:
                found = (now + INFO_SECONDS, self._run(lambda: self._stat(image)))
            except Exception as exc:
                found = (now + INFO_SECONDS, exc)
            self._remember(image, found[1])
        if isinstance(found[1], BaseException):
            raise _unavailable(found[1], location, image, self.url)
        return found[1]

    def _remember(self, image: str, info: dict | BaseException) -> None:
        if isinstance(info, BaseException):  # kept a minute: without the frames it holds
            info = info.with_traceback(None)
            info.__context__ = info.__cause__ = None
        with self._lock:
            self._infos[image] = (time.monotonic() + INFO_SECONDS, info)
            self._infos.move_to_end(image)
            while len(self._infos) > INFO_ENTRIES:
                self._infos.popitem(last=False)


class StoreRoot(RemoteRoot):
    """A bucket or container prefix in S3, Google Cloud Storage or Azure Blob Storage."""

    def __init__(self, url: str, scheme: str, path: str) -> None:
        super().__init__(url, scheme, path)
        self._fs = None

    def _relative(self, image: str) -> str:
        relative = super()._relative(image)
        if "?" in relative or "#" in relative:
            raise _Refused(
                "unreadable",
                f"{shown(image)}: fsspec reads a '?' or '#' in an object name as a version "
                "of another object, so labeltool does not open such names",
            )
        if len(f"{self.path}/{relative}".partition("/")[2].encode()) > MAX_KEY_BYTES:
            raise _Refused(
                "unreadable",
                f"{shown(image)} makes an object name over {MAX_KEY_BYTES} bytes long, "
                "more than object stores allow",
            )
        return relative

    def filesystem(self):
        """The fsspec file system (made on first use, with credentials from the environment)."""
        with self._lock:
            if self._fs is None:
                self._fs = _store_filesystem(self.scheme)
            return self._fs

    def _loop(self) -> asyncio.AbstractEventLoop:
        return self.filesystem().loop

    def _probe(self) -> None:
        try:
            self._run(lambda: self.filesystem()._info(self.path))
        except FileNotFoundError:
            return
        except Exception as exc:
            kind, reason = _classified(exc, self.url)
            if kind != "missing":
                raise ImageUnavailable(
                    f"the images root {self.url} cannot be read: {reason}"
                ) from None

    async def _stat(self, image: str) -> dict:
        info = await self.filesystem()._info(f"{self.path}/{image}")
        if info.get("type") != "file":
            raise FileNotFoundError(f"{self.url}/{image} is a folder, not an image")
        return info

    async def _read(self, image: str, limit: int | None) -> bytes:
        path = f"{self.path}/{image}"
        if limit is None:
            return await self.filesystem()._cat_file(path)
        return await self.filesystem()._cat_file(path, start=0, end=limit)

    async def _list(self, folder: str) -> dict[str, dict]:
        where = f"{self.path}/{folder}" if folder else self.path
        entries = await self.filesystem()._ls(where, detail=True)
        return {
            posixpath.basename(entry["name"].rstrip("/")): entry
            for entry in entries
            if entry.get("type") == "file"
        }


class HttpRoot(RemoteRoot):
    """A web folder: images are fetched with GET, each path segment percent-encoded, and a
    redirect is followed only while it stays under the root (same scheme, host and prefix).
    https certificates are checked against the system's CAs (or $SSL_CERT_FILE's)."""

    def __init__(self, url: str, scheme: str, path: str) -> None:
        super().__init__(url, scheme, path)
        parts = urlsplit(url)
        self._origin = (parts.scheme, parts.netloc.lower())
        self._prefix = parts.path.rstrip("/") + "/"
        self._fs = None
        self._tls: ssl.SSLContext | None = None

    def filesystem(self):
        """fsspec's HTTP file system, for its event loop and its aiohttp session (its own
        requests follow redirects anywhere, so labeltool makes the requests itself)."""
        with self._lock:
            if self._fs is None:
                from fsspec.asyn import sync
                from fsspec.implementations.http import HTTPFileSystem

                fs = HTTPFileSystem(skip_instance_cache=True, client_kwargs={"trust_env": False})
                sync(fs.loop, fs.set_session)  # one session, before the threads share it
                # The system's CAs, or those $SSL_CERT_FILE / $SSL_CERT_DIR name (read now).
                self._tls = ssl.create_default_context()
                self._fs = fs
            return self._fs

    def _relative(self, image: str) -> str:
        relative = super()._relative(image)
        return "/".join(quote(segment, safe="") for segment in relative.split("/"))

    def _loop(self) -> asyncio.AbstractEventLoop:
        return self.filesystem().loop

    async def _stat(self, image: str) -> dict:
        return await self._request(image, head=True)

    async def _read(self, image: str, limit: int | None) -> bytes:
        return await self._request(image, limit=limit)

    async def _list(self, folder: str) -> dict[str, dict]:
        raise NotImplementedError  # a web server's index page is no reliable listing

    async def _request(self, image: str, *, head: bool = False, limit: int | None = None):
        """HEAD (-> size, ETag) or GET (-> at most `limit` bytes, or the whole body within
        MAX_REMOTE_IMAGE_BYTES) of the image, following redirects only inside the root."""
        import aiohttp

        session = await self.filesystem().set_session()
        timeout = aiohttp.ClientTimeout(total=remote_timeout())
        url = self.join(image)
        headers = {"Range": f"bytes=0-{limit - 1}"} if limit else {}
        method = "HEAD" if head else "GET"
        for _ in range(MAX_REDIRECTS + 1):
            async with session.request(
                method,
                url,
                headers=headers,
                allow_redirects=False,
                timeout=timeout,
                ssl=self._tls,
            ) as response:
                if response.status in (301, 302, 303, 307, 308):
                    target = urljoin(url, response.headers.get("Location", ""))
                    if not self._inside(target):
                        raise _Escape(target)
                    url = target
                    continue
                if method == "HEAD" and response.status in (405, 501):  # no HEAD: GET a byte
                    method, headers = "GET", {"Range": "bytes=0-0"}
                    continue
                _raise_for_status(response.status, response.reason)
                if head:
                    return _http_info(response.headers)
                most = limit or MAX_REMOTE_IMAGE_BYTES
                data = bytearray()
                async for block in response.content.iter_chunked(2**16):
                    data += block
                    if len(data) > most:
                        if limit:
                            return bytes(data[:limit])
                        raise OSError(_too_large(len(data)))
                return bytes(data)
        raise OSError(f"more than {MAX_REDIRECTS} redirects")

    def _inside(self, target: str) -> bool:
        """Whether `target` lies under the root: same scheme and host, under its prefix,
        with no `.` or `..` segment however it is encoded."""
        parts = urlsplit(target)
        if (parts.scheme.lower(), parts.netloc.lower()) != self._origin:
            return False
        if not parts.path.startswith(self._prefix):
            return False
        segments = [unquote(s) for s in parts.path[len(self._prefix) :].split("/")]
        return all(s not in (".", "..") and "/" not in s and "\\" not in s for s in segments)


# --- private helpers -------------------------------------------------------------------


class _Refused(ImageUnavailable):
    """An image path a root will not reach, and which kind of problem that is."""

    def __init__(self, kind: Literal["outside", "unreadable"], reason: str) -> None:
        self.kind, self.reason = kind, reason
        super().__init__(f"image path {reason}")


class _Escape(Exception):
    """An http redirect that leads out of the images root."""

    def __init__(self, target: str) -> None:
        self.target = target
        super().__init__(f"redirects to {_without_secrets(target)}, outside the images root")


@functools.lru_cache(maxsize=64)
def _root_at(scheme: str, url: str, path: str = "") -> ImagesRoot:
    if scheme == "file":
        return LocalRoot(url)
    if scheme in HTTP_SCHEMES:
        return HttpRoot(url, scheme, path)
    return StoreRoot(url, scheme, path)


#: Forget every ImagesRoot made so far (tests that change the environment's endpoint).
images_root.cache_clear = _root_at.cache_clear  # type: ignore[attr-defined]


def _relative(image: str) -> str:
    try:
        return safe_image_path(image)
    except ValueError as exc:
        kind = "outside" if "outside" in str(exc) or "absolute" in str(exc) else "unreadable"
        raise _Refused(kind, str(exc)) from None


def _normalised_url(text: str, scheme: str) -> tuple[str, str, str]:
    """(scheme, URL, file system path) for a URL root, refusing what may not be stored."""
    shown_root = _without_secrets(text)
    if scheme not in STORE_SCHEMES and scheme not in HTTP_SCHEMES:
        raise InvalidInput(
            f"images root {shown_root}: labeltool reads images from a local folder, s3://, "
            f"gs://, az:// or http(s):// URLs, not from {scheme}://"
        )
    parts = urlsplit(text)
    if "@" in parts.netloc:
        raise InvalidInput(
            f"images root {shown_root}: holds credentials (user:secret@), which would be stored "
            "in the database; give them through the environment instead (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*)"
        )
    if "?" in text or "#" in text:
        raise InvalidInput(
            f"images root {text.split('?')[0].split('#')[0]}: a query string or fragment "
            "(often a signed token) would be stored in the database; give credentials through "
            "the environment instead"
        )
    if "\\" in text or control_character(text):
        raise InvalidInput(f"images root {shown(text)}: holds a backslash or control character")
    if not parts.netloc:
        raise InvalidInput(f"images root {shown_root}: names no bucket or host")
    path = parts.path.rstrip("/")
    segments = [unquote(s) for s in path.split("/")[1:]]
    if any(s in ("", ".", "..") for s in segments):
        raise InvalidInput(f"images root {shown_root}: has an empty, '.' or '..' folder in it")
    if scheme in HTTP_SCHEMES:
        url = f"{scheme}://{parts.netloc.lower()}{path}"
        return scheme, url, url
    store = STORE_SCHEMES[scheme]
    return store, f"{scheme}://{parts.netloc}{path}", f"{parts.netloc}{path}"


def _without_secrets(text: str) -> str:
    """`text` with any user:secret@ and query string replaced, for a message."""
    parts = urlsplit(text)
    netloc = parts.netloc.rpartition("@")[2]
    if "@" in parts.netloc:
        netloc = f"***@{netloc}"
    return f"'{parts.scheme}://{netloc}{parts.path}'" if parts.scheme else shown(text)


def _store_filesystem(scheme: str):
    """An fsspec file system for the object store, its own instance, credentials from the
    environment, each request bounded by `remote_timeout()`."""
    package = STORE_PACKAGES[scheme]
    timeout = remote_timeout()
    try:
        if scheme == "s3":
            import s3fs

            return s3fs.S3FileSystem(
                skip_instance_cache=True,
                use_listings_cache=False,
                config_kwargs={
                    "connect_timeout": timeout,
                    "read_timeout": timeout,
                    "retries": {"max_attempts": 2, "mode": "standard"},
                },
            )
        if scheme == "gs":
            import gcsfs

            return gcsfs.GCSFileSystem(
                skip_instance_cache=True, use_listings_cache=False, requests_timeout=timeout
            )
        import adlfs

        return adlfs.AzureBlobFileSystem(skip_instance_cache=True, use_listings_cache=False)
    except ImportError:
        raise ImageUnavailable(
            f"{scheme}:// images roots need the {package} package, which this install lacks: "
            f"pip install {package}"
        ) from None


async def _bounded(make: Callable[[], Any], seconds: float) -> Any:
    return await asyncio.wait_for(make(), seconds)


def _raise_for_status(status: int, reason: str | None) -> None:
    if status in (404, 410):
        raise FileNotFoundError(f"HTTP {status}")
    if status in (401, 403):
        raise PermissionError(f"HTTP {status} {reason or ''}".strip())
    if status >= 300:
        raise OSError(f"HTTP {status} {reason or ''}".strip())


def _http_info(headers) -> dict:
    info: dict[str, Any] = {"type": "file"}
    length = headers.get("Content-Length")
    if (found := re.search(r"/(\d+)$", headers.get("Content-Range", ""))) is not None:
        length = found.group(1)
    if length is not None and length.isdigit():
        info["size"] = int(length)
    for field in ("ETag", "Last-Modified"):
        if field in headers:
            info[field.replace("-", "")] = headers[field]
    return info


def _classified(exc: BaseException, root: str) -> tuple[str, str]:
    """(ImageProblem kind, reason) for a failure reading from remote storage."""
    if isinstance(exc, ImageUnavailable):
        return "unreadable", str(exc)
    if isinstance(exc, _Escape):
        return "outside", str(exc)
    if isinstance(exc, FileNotFoundError):
        return "missing", ""
    if isinstance(exc, PermissionError):
        return "unreadable", "access denied: check the credentials in the environment"
    if isinstance(exc, TimeoutError):  # asyncio's and fsspec's too
        return "unreadable", (
            f"no answer within {remote_timeout():g} s (${TIMEOUT_ENV_VAR} sets the limit)"
        )
    name = type(exc).__name__
    if name == "NoCredentialsError":
        return "unreadable", (
            "no credentials found in the environment (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
        )
    if name in ("EndpointConnectionError", "ClientConnectorError", "ConnectTimeoutError"):
        return "unreadable", f"cannot connect to the storage of {root}"
    text = (str(exc).strip().splitlines() or [name])[0][:200]
    return "unreadable", text or name


def _unavailable(exc: BaseException, location: str, image: str, root: str) -> ImageUnavailable:
    """The ImageUnavailable for a failure reading `location`, saying why."""
    if isinstance(exc, ImageUnavailable):
        return exc
    kind, reason = _classified(exc, root)
    if kind == "missing":
        return ImageUnavailable(f"image file not found: {location}")
    if kind == "outside":
        return ImageUnavailable(
            f"image '{image}' leads outside the images root '{root}' ({reason})"
        )
    return ImageUnavailable(f"image file cannot be read: {location} ({reason})")


def _too_large(size: int) -> str:
    return (
        f"it takes {size / 2**20:,.0f} MB, more than the {MAX_REMOTE_IMAGE_BYTES // 2**20} MB "
        "labeltool reads from remote storage for one image"
    )
