"""Renditions: an example's image prepared once for the screen, then served from a cache.

Three kinds, each fitted in a box and never enlarged:

- "thumb" fits 192 x 192 (a gallery tile, twice its size for high-density screens);
- "review" fits 768 x 768 (the review screen);
- "original" is the full image, upright, re-encoded only when it must be.

The pipeline opens the image through its images root (`labeltool.storage`: a local folder or
a URL, confined to the root) and `images.decode` (with its pixel limit), lets a JPEG decode
at 1/2, 1/4 or 1/8 scale when a small rendition is wanted (`Image.draft`: a 12-megapixel
photo's tile costs a 500 x 375 decode), turns it upright by
its EXIF orientation, shrinks it with Lanczos and encodes it: PNG when it has transparency or
is small and kept at its own size (an 8x8 digit stays pixel-exact; the screen enlarges it
without smoothing), WebP for a shrunk photo (JPEG where Pillow lacks WebP), JPEG for a large
original. An upright file a browser shows as it is, and that needs no shrinking, is sent as
its own bytes.

`RenditionCache` keeps renditions in memory (least recently used out first, bounded by bytes)
and on disk (bounded by a byte budget, least recently used out first). The key holds the
image's full path or URL, its version (size and modification time, or a remote object's size
and ETag), the kind and PIPELINE_VERSION, so an edited image is rendered afresh. Disk entries
are written to a temporary file and renamed into place, so another process never reads half
of one. A cache that fails (a read-only folder, a
full disk) is skipped with one warning in the log: the image is still shown.

`RenditionPool` makes renditions ahead of need in a few background threads (the review
screen's next examples), so a person waits only for the image they asked for: `prepare` queues
images and returns futures, the latest request's first image first; `now` is for the image on
screen, which never queues behind the others.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import logging
import os
import queue
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, get_args

from PIL import ExifTags, Image, ImageOps, features

from labeltool import storage
from labeltool.errors import ImageUnavailable
from labeltool.images import decode

Kind = Literal["thumb", "review", "original"]
#: The box each kind fits in, in pixels (None: the full image).
KIND_BOX: dict[Kind, int | None] = {"thumb": 192, "review": 768, "original": None}
#: Raise when the pipeline's output changes, so no cache serves the old renditions.
PIPELINE_VERSION = 1

#: The in-memory cache's default bound, and the bookkeeping counted per entry besides its data.
DEFAULT_MEMORY_BYTES = 64 * 2**20
MEMORY_ENTRY_OVERHEAD = 512
#: The disk cache's default budget: the sum of its files' sizes.
DEFAULT_DISK_BYTES = 2**30
#: A write that takes the disk cache over budget evicts down to this share of it, so the
#: folder is scanned once per tenth of a budget written, not after every write.
DISK_LOW_WATER = 0.9
#: When set, the cache folder is CACHE_FOLDER_NAME inside this directory (else inside the
#: platform's cache directory, e.g. ~/.cache).
CACHE_ENV_VAR = "LABELTOOL_RENDITION_CACHE"
CACHE_FOLDER_NAME = "labeltool-renditions"

#: JPEGs decode at the smallest scale still this many times the box, so Lanczos has pixels
#: to average (Pillow's own `reducing_gap`).
DRAFT_GAP = 2
#: Formats and modes every browser shows as they are.
BROWSER_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg"}
BROWSER_FORMATS |= {"GIF": "image/gif", "WEBP": "image/webp"}
BROWSER_MODES = {"1", "L", "LA", "P", "RGB", "RGBA"}
#: Shrunk photos: WebP is about a third of the JPEG's size at the same look.
PHOTO_FORMAT = "WEBP" if features.check("webp") else "JPEG"
PHOTO_QUALITY = {"WEBP": 80, "JPEG": 85}
#: A large original that must be re-encoded (turned upright): JPEG, 30 times faster than WebP.
ORIGINAL_JPEG_QUALITY = 90
#: Threads that make renditions ahead of need. Pillow lets go of the GIL while it decodes,
#: shrinks and encodes, so two render two photos at once and leave the server's reruns a core.
PREPARE_WORKERS = 2

_ENTRY_SUFFIX = ".rendition"
_TEMP_PREFIX = ".tmp-"
#: A temporary file this old was left by a process that died while writing it.
_STALE_TEMP_SECONDS = 3600
_ORIENTATION = ExifTags.Base.Orientation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendition:
    """An encoded image ready for the browser, with its size and its source's."""

    media_type: str
    data: bytes = field(repr=False)
    width: int
    height: int
    #: The source image's size in pixels, upright, and its file's size in bytes.
    source_width: int
    source_height: int
    source_bytes: int

    def data_uri(self) -> str:
        """The rendition as a `data:` URI, for an <img> src or `st.image`."""
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True)
class CacheStats:
    """What a RenditionCache has served since it was made, and what it holds."""

    memory_hits: int
    disk_hits: int
    #: Renditions rendered because no cache held them.
    misses: int
    memory_bytes: int
    memory_entries: int
    #: The disk cache's bytes as this process counts them (other processes' writes show up
    #: at its next scan of the folder).
    disk_bytes: int

    @property
    def hits(self) -> int:
        """Renditions served from either cache."""
        return self.memory_hits + self.disk_hits


def rendition(images_root: str | Path, image: str, *, kind: Kind) -> Rendition:
    """The example's image rendered as `kind`, without any cache (ImageUnavailable if it
    cannot be read or lies outside the images root)."""
    _check_kind(kind)
    return _render(storage.images_root(images_root), image, kind)


def cached_rendition(images_root: str | Path, image: str, kind: Kind) -> Rendition:
    """`rendition` through the process-wide cache (`default_cache`): what the pages call."""
    return default_cache().get(images_root, image, kind=kind)


def default_cache() -> RenditionCache:
    """The process-wide cache, in `default_cache_folder()` with the default budgets."""
    global _default_cache
    with _default_cache_lock:
        if _default_cache is None:
            _default_cache = RenditionCache(default_cache_folder())
        return _default_cache


def default_pool() -> RenditionPool:
    """The process-wide pool, making renditions into `default_cache()`."""
    global _default_pool
    with _default_cache_lock:
        if _default_pool is None:
            _default_pool = RenditionPool(None)
        return _default_pool


def default_cache_folder() -> Path:
    """`labeltool-renditions` in $LABELTOOL_RENDITION_CACHE, or in the platform's cache
    directory when it is unset."""
    parent = os.environ.get(CACHE_ENV_VAR, "").strip()
    return Path(parent or _platform_cache_dir()) / CACHE_FOLDER_NAME


class RenditionCache:
    """Renditions kept in memory and in `folder`, each bounded by bytes, least recently used
    out first. Safe to share between threads; several processes may share the folder.

    `folder=None` or `disk_bytes=0` keeps no disk cache; `memory_bytes=0` keeps none in memory.
    """

    def __init__(
        self,
        folder: str | Path | None,
        *,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        disk_bytes: int = DEFAULT_DISK_BYTES,
    ) -> None:
        self.folder = Path(folder) if folder is not None and disk_bytes > 0 else None
        self.memory_budget = memory_bytes
        self.disk_budget = disk_bytes
        self._memory: OrderedDict[str, Rendition] = OrderedDict()
        self._memory_bytes = 0
        self._memory_hits = self._disk_hits = self._misses = 0
        self._memory_lock = threading.Lock()
        #: Taken for the disk's byte count and evictions, never while rendering or reading.
        self._disk_lock = threading.Lock()
        self._disk_bytes: int | None = None  # unknown until the folder is first scanned
        self._warned = False

    def get(self, images_root: str | Path, image: str, *, kind: Kind) -> Rendition:
        """The example's image as `kind`, from memory, from disk or rendered (and kept)."""
        _check_kind(kind)
        root = storage.images_root(images_root)
        try:
            key = _key(root, image, root.version(image), kind)
        except ImageUnavailable:
            return _render(root, image, kind)  # raises ImageUnavailable saying why
        found = self._held(key)
        if found is not None:
            return found
        made = _render(root, image, kind)
        with self._memory_lock:
            self._misses += 1
        self._remember(key, made)
        self._write_disk(key, made)
        return made

    def peek(self, images_root: str | Path, image: str, *, kind: Kind) -> Rendition | None:
        """The example's image as `kind` if memory or disk holds it, else None: never renders
        (nor says why an image cannot be read: `get` does)."""
        _check_kind(kind)
        try:
            root = storage.images_root(images_root)
            key = _key(root, image, root.version(image), kind)
        except ImageUnavailable:
            return None
        return self._held(key)

    def stats(self) -> CacheStats:
        """Hits, misses and bytes held so far (the folder is scanned if not yet counted)."""
        with self._disk_lock:
            if self._disk_bytes is None and self.folder is not None:
                with suppress(OSError):
                    self._disk_bytes = sum(size for _, size, _ in self._scan())
            disk_bytes = self._disk_bytes or 0
        with self._memory_lock:
            return CacheStats(
                memory_hits=self._memory_hits,
                disk_hits=self._disk_hits,
                misses=self._misses,
                memory_bytes=self._memory_bytes,
                memory_entries=len(self._memory),
                disk_bytes=disk_bytes,
            )

    def _held(self, key: str) -> Rendition | None:
        """The rendition under `key` from memory, else from disk (then kept in memory too)."""
        with self._memory_lock:
            found = self._memory.get(key)
            if found is not None:
                self._memory.move_to_end(key)
                self._memory_hits += 1
                return found
        found = self._read_disk(key)
        if found is not None:
            with self._memory_lock:
                self._disk_hits += 1
            self._remember(key, found)
        return found

    # --- memory ---------------------------------------------------------------------------

    def _remember(self, key: str, made: Rendition) -> None:
        cost = len(made.data) + MEMORY_ENTRY_OVERHEAD
        if cost > self.memory_budget:
            return
        with self._memory_lock:
            if key in self._memory:
                return
            self._memory[key] = made
            self._memory_bytes += cost
            while self._memory_bytes > self.memory_budget:
                _, old = self._memory.popitem(last=False)
                self._memory_bytes -= len(old.data) + MEMORY_ENTRY_OVERHEAD

    # --- disk -----------------------------------------------------------------------------

    def _entry_path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}{_ENTRY_SUFFIX}"

    def _read_disk(self, key: str) -> Rendition | None:
        """The entry for `key` on disk, marked as just used, or None (missing or unreadable)."""
        if self.folder is None:
            return None
        entry = self._entry_path(key)
        try:
            blob = entry.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn(exc)
            return None
        found = _unpack(blob)
        if found is None:  # not ours, or damaged: render it again, and write it afresh
            with suppress(OSError):
                entry.unlink()
            return None
        with suppress(OSError):  # a read-only folder still serves what it holds
            _mark_used(entry)
        return found

    def _write_disk(self, key: str, made: Rendition) -> None:
        """Store `made` on disk atomically, then evict if the budget is exceeded."""
        if self.folder is None:
            return
        blob = _pack(made)
        if len(blob) > self.disk_budget:
            return
        entry = self._entry_path(key)
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=entry.parent)
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(blob)
                _mark_used(temporary)
                os.replace(temporary, entry)
            except BaseException:
                with suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            self._warn(exc)
            return
        with self._disk_lock:
            try:
                if self._disk_bytes is None:
                    self._disk_bytes = sum(size for _, size, _ in self._scan())  # with this one
                else:
                    self._disk_bytes += len(blob)
                if self._disk_bytes > self.disk_budget:
                    self._evict()
            except OSError as exc:
                self._warn(exc)

    def _evict(self) -> None:
        """Delete the least recently used entries until the folder is within DISK_LOW_WATER of
        its budget (called with the disk lock held; the folder is scanned afresh, as other
        processes write to it too)."""
        entries = sorted(self._scan())
        total = sum(size for _, size, _ in entries)
        keep = self.disk_budget * DISK_LOW_WATER
        for _, size, entry in entries:
            if total <= keep:
                break
            try:
                entry.unlink()
            except FileNotFoundError:
                pass  # another process evicted it first
            except OSError as exc:
                self._warn(exc)
                break
            total -= size
        self._disk_bytes = total

    def _scan(self) -> list[tuple[int, int, Path]]:
        """(last use in ns, size, path) of every entry in the folder; temporary files left by a
        process that died while writing are deleted on the way."""
        assert self.folder is not None
        found = []
        stale = time.time() - _STALE_TEMP_SECONDS
        with suppress(FileNotFoundError), os.scandir(self.folder) as shards:
            for shard in shards:
                if not shard.is_dir(follow_symlinks=False):
                    continue
                with suppress(FileNotFoundError), os.scandir(shard.path) as files:
                    for item in files:
                        with suppress(FileNotFoundError):
                            stat = item.stat(follow_symlinks=False)
                            if item.name.endswith(_ENTRY_SUFFIX):
                                found.append((stat.st_mtime_ns, stat.st_size, Path(item.path)))
                            elif item.name.startswith(_TEMP_PREFIX) and stat.st_mtime < stale:
                                os.unlink(item.path)
        return found

    def _warn(self, exc: OSError) -> None:
        """Log the first disk cache failure (later ones would repeat it for every image)."""
        if not self._warned:
            self._warned = True
            log.warning(
                "rendition cache folder %s cannot be used (%s); images are rendered without it",
                self.folder,
                exc,
            )


class RenditionPool:
    """Renditions made ahead of need by `workers` background threads, through `cache`
    (None: `default_cache()`, looked up when first needed).

    Newest request first: the images of a `prepare` call are made before any queued by earlier
    calls, and in the order given, so after a person moves on (or to another queue) the images
    they will see next come first. An image queued or being made is never made twice at once:
    later requests share its future, and `now` takes a queued one over or waits for the thread
    making it. The threads are daemons: a server stopping does not wait for work queued ahead.
    """

    def __init__(self, cache: RenditionCache | None, *, workers: int = PREPARE_WORKERS) -> None:
        self._cache = cache
        self.workers = workers
        self._threads: list[threading.Thread] = []
        #: (-request number, position in the request, tie-break, job key, future)
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._jobs: dict[tuple[str, str, Kind], Future[Rendition]] = {}
        self._lock = threading.Lock()
        self._requests = itertools.count(1)
        self._ties = itertools.count()

    @property
    def cache(self) -> RenditionCache:
        """The cache the pool makes renditions into."""
        if self._cache is None:
            self._cache = default_cache()
        return self._cache

    def prepare(
        self, images_root: str | Path, images: Sequence[str], *, kind: Kind
    ) -> list[Future[Rendition]]:
        """A future of each image as `kind`, in order: done already when the cache holds it,
        else queued ahead of every earlier request (its exception, such as ImageUnavailable,
        is the future's)."""
        _check_kind(kind)
        request = next(self._requests)
        futures: list[Future[Rendition]] = []
        for position, image in enumerate(images):
            key = (str(images_root), image, kind)
            with self._lock:
                job = self._jobs.get(key)
            if job is None:  # not on its way: perhaps held already
                held = self.cache.peek(images_root, image, kind=kind)
                if held is not None:
                    futures.append(_finished(held))
                    continue
            with self._lock:
                job = self._jobs.get(key)
                if job is None:
                    job = self._jobs[key] = Future()
                if not (job.running() or job.done()):  # (re)queued at this request's priority
                    self._queue.put((-request, position, next(self._ties), key, job))
                self._start_workers()
            futures.append(job)
        return futures

    def now(self, images_root: str | Path, image: str, *, kind: Kind) -> Rendition:
        """The image as `kind`, made in this thread unless a worker is making it already (then
        its result); ImageUnavailable if it cannot be read."""
        key = (str(images_root), image, kind)
        with self._lock:
            job = self._jobs.get(key)
            mine = job is not None and not job.running() and not job.done()
            if mine:
                job.set_running_or_notify_cancel()  # a worker that pops it later skips it
        if job is not None and not mine:
            return job.result()
        return self._make(key, job)

    # --- the workers ----------------------------------------------------------------------

    def _start_workers(self) -> None:
        """Start the threads on first use (called with the lock held)."""
        while len(self._threads) < self.workers:
            thread = threading.Thread(
                target=self._work, name=f"labeltool-rendition-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        while True:
            *_, key, job = self._queue.get()
            with self._lock:
                if job.running() or job.done():  # requeued at a newer priority, or taken over
                    continue
                job.set_running_or_notify_cancel()
            with suppress(Exception):  # the exception is the future's, for whoever waits
                self._make(key, job)

    def _make(self, key: tuple[str, str, Kind], job: Future[Rendition] | None) -> Rendition:
        """Make the rendition for `key`, settling `job` (running, claimed by this thread)."""
        images_root, image, kind = key
        try:
            made = self.cache.get(images_root, image, kind=kind)
        except Exception as exc:
            if job is not None:
                job.set_exception(exc)
            raise
        else:
            if job is not None:
                job.set_result(made)
            return made
        finally:
            with self._lock:
                if job is not None and self._jobs.get(key) is job:
                    del self._jobs[key]


# --- private helpers -------------------------------------------------------------------

_default_cache: RenditionCache | None = None
_default_pool: RenditionPool | None = None
_default_cache_lock = threading.Lock()


def _finished(made: Rendition) -> Future[Rendition]:
    """A future that is done already, holding `made`."""
    future: Future[Rendition] = Future()
    future.set_result(made)
    return future


def _check_kind(kind: str) -> None:
    if kind not in KIND_BOX:
        raise ValueError(f"unknown rendition kind {kind!r}; use one of {get_args(Kind)}")


def _key(root: storage.ImagesRoot, image: str, version: str, kind: Kind) -> str:
    """The cache key: the pipeline, the kind, the image's full path or URL and its version."""
    stamp = f"{PIPELINE_VERSION}\0{kind}\0{version}\0{root.join(image)}"
    return hashlib.sha256(stamp.encode("utf-8", "surrogateescape")).hexdigest()


def _render(root: storage.ImagesRoot, image: str, kind: Kind) -> Rendition:
    """Run the pipeline on `image`, reached through its root (which confines it)."""
    box = KIND_BOX[kind]
    with root.open(image) as stream, decode(stream, root.join(image)) as opened:
        source_format, source_mode = opened.format, opened.mode
        icc = opened.info.get("icc_profile") if source_mode in ("RGB", "RGBA") else None
        orientation = opened.getexif().get(_ORIENTATION, 1)
        turned = orientation in (5, 6, 7, 8)
        source_width, source_height = (opened.height, opened.width) if turned else opened.size
        shrink = box is not None and max(opened.size) > box
        if box is not None and shrink:
            opened.draft(None, _draft_size(opened.size, box))  # a no-op but for JPEG
        opened.load()
        source = {
            "source_width": source_width,
            "source_height": source_height,
            "source_bytes": _stream_size(stream),
        }
        if (
            not shrink
            and orientation not in range(2, 9)
            and source_format in BROWSER_FORMATS
            and source_mode in BROWSER_MODES
        ):  # the file as it is: every pixel kept, nothing spent on encoding
            media_type = BROWSER_FORMATS[source_format]
            width, height = opened.size
            stream.seek(0)
            return Rendition(media_type, stream.read(), width, height, **source)
        ImageOps.exif_transpose(opened, in_place=True)
    picture = _browser_mode(opened)
    if shrink:
        picture.thumbnail((box, box), Image.Resampling.LANCZOS)
    picture = _without_opaque_alpha(picture)
    if picture.mode in ("RGBA", "LA") or (not shrink and max(picture.size) <= KIND_BOX["review"]):
        data = _encode(picture, "PNG", icc=icc)
        media_type = "image/png"
    elif kind == "original":
        data = _encode(picture, "JPEG", icc=icc, quality=ORIGINAL_JPEG_QUALITY)
        media_type = "image/jpeg"
    else:
        data = _encode(picture, PHOTO_FORMAT, icc=icc, quality=PHOTO_QUALITY[PHOTO_FORMAT])
        media_type = f"image/{PHOTO_FORMAT.lower()}"
    return Rendition(media_type, data, picture.width, picture.height, **source)


def _stream_size(stream: BinaryIO) -> int:
    """The bytes in `stream`, leaving its position where it was."""
    here = stream.tell()
    size = stream.seek(0, os.SEEK_END)
    stream.seek(here)
    return size


def _draft_size(size: tuple[int, int], box: int) -> tuple[int, int]:
    """The size to ask `draft` for: the image fitted in the box, DRAFT_GAP times over (a JPEG
    then decodes at the smallest of 1/8, 1/4, 1/2 or full scale that is at least that big)."""
    scale = box * DRAFT_GAP / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _browser_mode(picture: Image.Image) -> Image.Image:
    """The picture in L, LA, RGB or RGBA (palettes and other modes converted exactly)."""
    if picture.mode in ("L", "LA", "RGB", "RGBA"):
        return picture
    if picture.mode == "1":
        return picture.convert("L")
    transparent = picture.mode == "PA" or "transparency" in picture.info
    return picture.convert("RGBA" if transparent else "RGB")


def _without_opaque_alpha(picture: Image.Image) -> Image.Image:
    """Drop an alpha channel that is opaque everywhere, so the picture may be a photo."""
    if picture.mode in ("RGBA", "LA") and picture.getchannel("A").getextrema()[0] == 255:
        return picture.convert(picture.mode[:-1])
    return picture


def _encode(picture: Image.Image, fmt: str, *, icc: bytes | None, quality: int = 0) -> bytes:
    buffer = io.BytesIO()
    options: dict[str, object] = {"quality": quality} if quality else {}
    if icc and picture.mode in ("RGB", "RGBA"):  # keep a phone's wide-gamut colours
        options["icc_profile"] = icc
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _pack(made: Rendition) -> bytes:
    """A disk entry: one line of JSON describing the rendition, then its bytes."""
    header = {
        "version": PIPELINE_VERSION,
        "media_type": made.media_type,
        "width": made.width,
        "height": made.height,
        "source_width": made.source_width,
        "source_height": made.source_height,
        "source_bytes": made.source_bytes,
        "length": len(made.data),
    }
    return json.dumps(header).encode() + b"\n" + made.data


def _unpack(blob: bytes) -> Rendition | None:
    """The rendition in a disk entry, or None if the entry is damaged or from another version."""
    line, _, data = blob.partition(b"\n")
    try:
        header = json.loads(line)
        made = Rendition(
            media_type=header["media_type"],
            data=data,
            width=header["width"],
            height=header["height"],
            source_width=header["source_width"],
            source_height=header["source_height"],
            source_bytes=header["source_bytes"],
        )
    except (ValueError, TypeError, KeyError):
        return None
    if header.get("version") != PIPELINE_VERSION or header.get("length") != len(data):
        return None
    return made


def _mark_used(path: str | Path) -> None:
    """Set the file's mtime, which eviction orders by, to now to the nanosecond (a file
    system's own clock may tick only every few milliseconds, too coarse to order by)."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))


def _platform_cache_dir() -> Path:
    """Where the platform keeps per-user caches (~/.cache, ~/Library/Caches, %LOCALAPPDATA%)."""
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    if sys.platform == "darwin":
        return home / "Library" / "Caches"
    return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
