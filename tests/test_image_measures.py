"""Image measures: blur, brightness, information and size from pictures made here with known
answers; outliers relative to the project's own images; near-duplicate pairs by perceptual
hash, fast enough for 100,000 images; and measuring a folder through its images root."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from labeltool.image_measures import (
    MAX_DIFFERENCE,
    MIN_IMAGES,
    ImageMeasures,
    difference,
    flag_outliers,
    measure,
    measure_images,
    near_duplicates,
    same_pictures,
    thumbnail,
    thumbnails,
)
from labeltool.storage import images_root


def test_blur_scores_fall_as_the_image_gets_blurrier() -> None:
    """A noisy checkerboard scores lower with each wider Gaussian blur."""
    sharp = _checkerboard(512, 512)
    radii = [0.5, 1, 2, 4, 8]

    scores = [measure(sharp).blur] + [
        measure(sharp.filter(ImageFilter.GaussianBlur(r))).blur for r in radii
    ]

    assert all(later < earlier for earlier, later in zip(scores, scores[1:], strict=False))
    assert scores[-1] < scores[0] / 100


def test_one_scene_at_two_sizes_gets_a_comparable_blur_score() -> None:
    """A scene at 4000x3000 and the same scene shrunk to 400x300 score within a factor of 2
    (both are measured at about 512 pixels), while their sizes are their own."""
    large = _scene(4000, 3000)
    small = large.resize((400, 300), Image.Resampling.LANCZOS)

    big, little = measure(large), measure(small)

    assert 0.5 < big.blur / little.blur < 2
    assert (big.width, big.height, little.width, little.height) == (4000, 3000, 400, 300)
    assert big.aspect == pytest.approx(4 / 3)


def test_a_12_megapixel_photo_is_measured_well_under_a_second() -> None:
    """Measuring a 4000x3000 RGB photo takes well under a second."""
    measure(_scene(64, 48))  # imagehash and scipy load on first use, not on every image
    photo = _scene(4000, 3000)

    started = time.perf_counter()
    measure(photo)

    assert time.perf_counter() - started < 0.5


def test_a_darkened_copy_is_darker_and_flatter() -> None:
    """Halving the brightness lowers the mean brightness and the contrast."""
    picture = _scene(320, 240)
    darker = ImageEnhance.Brightness(picture).enhance(0.4)

    bright, dark = measure(picture), measure(darker)

    assert dark.brightness < bright.brightness * 0.6
    assert dark.contrast < bright.contrast
    assert 0 <= dark.brightness < bright.brightness <= 1


def test_a_flat_image_has_no_information_and_noise_has_much() -> None:
    """A flat grey image has entropy 0 and blur 0; uniform noise is near the 8-bit maximum."""
    flat = measure(Image.new("L", (200, 150), 128))
    noise = np.random.default_rng(0).integers(0, 256, (150, 200), dtype=np.uint8)
    noisy = measure(Image.fromarray(noise))

    assert (flat.entropy, flat.blur, flat.contrast) == (0.0, 0.0, 0.0)
    assert flat.brightness == pytest.approx(128 / 255)
    assert noisy.entropy > 7.9


def test_an_exif_rotated_jpeg_is_measured_upright() -> None:
    """A JPEG stored 300x200 with EXIF orientation 6 is 200x300 upright; it is turned once,
    whether or not the caller turned it first (its hash is that of the upright picture)."""
    stored = _scene(300, 200)
    exif = stored.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=95, exif=exif)
    opened = Image.open(buffer)

    raw = measure(opened)
    turned = measure(ImageOps.exif_transpose(opened))
    sideways = measure(_scene(300, 200))

    assert (raw.width, raw.height, turned.width, turned.height) == (200, 300, 200, 300)
    assert raw.aspect == pytest.approx(2 / 3)
    assert _distance(raw.phash, turned.phash) <= 2
    assert _distance(raw.phash, sideways.phash) > 10


def test_transparency_is_measured_over_white() -> None:
    """A fully transparent PNG whose hidden colour is black counts as white, as a page shows it."""
    buffer = io.BytesIO()
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(buffer, "PNG")

    clear = measure(Image.open(buffer))

    assert clear.brightness == pytest.approx(1.0)


def test_16_bit_grey_and_small_digits_are_measured() -> None:
    """A 16-bit grey PNG at half scale is mid-grey; a 28x28 digit keeps its size and has edges."""
    half = np.full((40, 60), 32768, dtype=np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(half).save(buffer, "PNG")
    digit = Image.new("L", (28, 28))
    ImageDraw.Draw(digit).ellipse([7, 4, 21, 24], outline=255, width=3)

    grey, small = measure(Image.open(buffer)), measure(digit)

    assert grey.brightness == pytest.approx(0.5, abs=0.01)
    assert (small.width, small.height) == (28, 28)
    assert small.blur > 1000


def test_planted_outliers_are_flagged_and_nothing_else() -> None:
    """Among 100 ordinary images, exactly the 3 very blurry, 2 dark and 1 odd-size image are
    flagged, each with its kind and a reason naming the percentile or the usual shape."""
    project = _ordinary_project(100)
    project |= {f"blurry{i}": _like(project, blur=blur) for i, blur in enumerate([4, 6.5, 9])}
    project |= {f"dark{i}": _like(project, brightness=b) for i, b in enumerate([0.04, 0.08])}
    project["odd"] = _like(project, width=120, height=1400)

    flags = flag_outliers(project)

    assert {name: [f.kind for f in found] for name, found in flags.items()} == {
        "blurry0": ["blurry"],
        "blurry1": ["blurry"],
        "blurry2": ["blurry"],
        "dark0": ["dark"],
        "dark1": ["dark"],
        "odd": ["odd size"],
    }
    assert re.fullmatch(
        r"blur score 6\.5, in the blurriest 2% of this project once contrast is accounted for, "
        r"where most are about \d{3}",
        flags["blurry1"][0].reason,
    )
    assert flags["dark1"][0].reason == (
        "mean brightness 0.08, in the darkest 2% of this project, where most are about 0.46"
    )
    assert flags["odd"][0].reason == "odd size: 120×1400, aspect 0.09 while most are about 1.3"


def test_bright_featureless_and_oversized_images_are_flagged() -> None:
    """A near-white image, one with little detail and one far larger than the rest are flagged
    "bright", "low information" and "odd size", with the share they fall in."""
    project = _ordinary_project(100)
    project["white"] = _like(project, brightness=0.97)
    project["plain"] = _like(project, entropy=2.0)
    project["huge"] = _like(project, width=4000, height=3000)

    flags = flag_outliers(project, share=0.1)

    assert {name: [f.kind for f in found] for name, found in flags.items()} == {
        "white": ["bright"],
        "plain": ["low information"],
        "huge": ["odd size"],
    }
    assert "in the brightest 1% of this project" in flags["white"][0].reason
    assert flags["plain"][0].reason.startswith("entropy 2.0 bits (little detail), in the lowest")
    assert re.fullmatch(
        r"odd size: 4000×3000 while most are about 6\d\d×4\d\d", flags["huge"][0].reason
    )


def test_a_fifth_of_a_project_blurred_is_flagged_and_no_sharp_image() -> None:
    """When a fifth of the project is blurred, the blurred images widen the usual spread so
    much that a two-sided yardstick flags none of them; judged against the sharp side's
    spread they are all flagged, and no sharp image is, each named with its own rank."""
    rng = np.random.default_rng(5)
    project = _ordinary_project(80)
    project |= {
        f"blurred{i}": _like_measures(project[f"ok{i}"], blur=float(rng.uniform(15, 60)))
        for i in range(20)
    }

    flags = flag_outliers(project)

    blurry = {name for name, found in flags.items() if any(f.kind == "blurry" for f in found)}
    assert blurry == {f"blurred{i}" for i in range(20)}
    blurriest = min(project, key=lambda name: project[name].sharpness)
    assert "in the blurriest 1% of this project" in flags[blurriest][0].reason


def test_a_project_of_dark_images_is_not_all_dark() -> None:
    """When every image is dark none stands out; when a tenth is far darker than the rest, only
    `share` of the project is flagged dark, all of them from that tenth (ranked by exposure,
    which counts their tonal range as well as their near-equal mean brightness)."""
    rng = np.random.default_rng(3)
    ordinary = _ordinary_project(100)
    dark = {n: _like_measures(m, brightness=rng.uniform(0.02, 0.12)) for n, m in ordinary.items()}
    blacker = dict(dark)
    for i in range(10):
        blacker[f"ok{i}"] = _like_measures(dark[f"ok{i}"], brightness=0.0001 * (i + 1))
    for i in range(10, 100):
        blacker[f"ok{i}"] = _like_measures(dark[f"ok{i}"], brightness=rng.normal(0.3, 0.02))

    flagged = flag_outliers(blacker, share=0.05)

    assert flag_outliers(dark) == {}
    assert len(flagged) == 5
    assert set(flagged) <= {f"ok{i}" for i in range(10)}
    assert all([f.kind for f in found] == ["dark"] for found in flagged.values())


def test_darkened_photos_among_dark_and_light_scenes_are_dark_and_only_they() -> None:
    """Photos underexposed to 35% (1.5 stops) among scenes from dusky to light are flagged dark
    and no well-exposed scene is, the dusky ones included; a photo given a tenth of the light
    has lost its detail too, which its dark flag names rather than a low-information one."""
    scenes = [_lit_scene(seed) for seed in range(60)]
    darkened = {f"under{i}": _photographed(scenes[i], exposure=0.35) for i in range(6)}
    darkened["black"] = _photographed(scenes[6], exposure=0.1)
    project = {f"scene{i}": measure(_photographed(p)) for i, p in enumerate(scenes)}
    project |= {name: measure(p) for name, p in darkened.items()}

    flags = flag_outliers(project)

    kinds = {name: [f.kind for f in found] for name, found in flags.items()}
    assert set(kinds) == set(darkened)
    assert all(kinds[f"under{i}"] == ["dark"] for i in range(6))
    assert "dark" in kinds["black"] and "low information" not in kinds["black"]
    dark = next(f for f in flags["black"] if f.kind == "dark")
    assert re.fullmatch(
        r"mean brightness 0\.0\d, in the darkest 2% of this project, where most are about "
        r"0\.4\d; its little detail \(entropy \d\.\d bits\) comes from the exposure",
        dark.reason,
    )
    assert "entropy" not in flags["under0"][0].reason


def test_a_dark_sharp_photo_is_not_blurry_and_a_blurred_one_still_is() -> None:
    """Among 40 photos, one taken with 35% of the light is flagged dark only, though its blur
    score is below most (the Laplacian falls with the square of the contrast), while one
    blurred by 2 pixels is flagged blurry, its reason saying contrast is accounted for."""
    project = {f"photo{i}": measure(_photographed(_scene(160, 120, seed=i))) for i in range(40)}
    project["dark"] = measure(_photographed(_scene(160, 120, seed=40), exposure=0.35))
    blurred = _scene(160, 120, seed=41).filter(ImageFilter.GaussianBlur(2))
    project["blurred"] = measure(_photographed(blurred))

    flags = flag_outliers(project)

    assert project["dark"].blur < min(project[f"photo{i}"].blur for i in range(40))
    assert {name: [f.kind for f in found] for name, found in flags.items()} == {
        "dark": ["dark"],
        "blurred": ["blurry"],
    }
    assert re.fullmatch(
        r"blur score 86\.1, in the blurriest 3% of this project once contrast is accounted "
        r"for, where most are about 1,1\d\d",
        flags["blurred"][0].reason,
    )


def test_a_small_project_flags_nothing() -> None:
    """Below MIN_IMAGES measured images nothing is flagged, however extreme; at MIN_IMAGES the
    same extreme image is."""
    ordinary = _ordinary_project(MIN_IMAGES - 1)
    extreme = _like(ordinary, blur=1.0)
    reasons = {f"gone{i}": "image file not found: gone.png" for i in range(5)}

    assert flag_outliers(dict(_ordinary_project(MIN_IMAGES - 2)) | {"x": extreme} | reasons) == {}
    assert [f.kind for f in flag_outliers(ordinary | {"x": extreme} | reasons)["x"]] == ["blurry"]


def test_identical_images_flag_nothing_but_one_odd_size_stands_out() -> None:
    """All-equal measures (a spread of zero) flag nothing; one odd shape among 28x28 digits
    does, and a one-pixel difference does not."""
    digit = ImageMeasures(300.0, 0.13, 0.3, 1.5, 28, 28, 1.0, "0" * 16)
    same = {f"d{i}": digit for i in range(99)}

    assert flag_outliers(same) == {}
    assert flag_outliers(same | {"wide": _like_measures(digit, width=28, height=29)}) == {}
    tall = flag_outliers(same | {"tall": _like_measures(digit, width=28, height=300)})
    assert tall["tall"][0].reason == "odd size: 28×300, aspect 0.09 while most are about 1.0"


def test_a_resized_jpeg_copy_is_a_near_duplicate_and_another_picture_is_not() -> None:
    """A copy shrunk to 80% and saved as JPEG at quality 70 is within 4 bits of the original;
    a different picture is not."""
    original = _scene(640, 480, seed=1)
    buffer = io.BytesIO()
    original.resize((512, 384), Image.Resampling.BILINEAR).save(buffer, "JPEG", quality=70)
    hashes = {
        "original.png": measure(original).phash,
        "copy.jpg": measure(Image.open(buffer)).phash,
        "other.png": measure(_scene(640, 480, seed=2)).phash,
    }

    pairs = near_duplicates(hashes)

    assert [(a, b) for a, b, _ in pairs] == [("original.png", "copy.jpg")]
    assert pairs[0][2] <= 4


def test_copies_of_a_digit_are_the_same_picture_and_a_second_drawing_is_not() -> None:
    """A blurred 28x28 seven re-saved, resized by 10% either way, a tenth brighter or darker,
    or re-encoded as JPEG differs from it by at most MAX_DIFFERENCE; the seven drawn again
    with its stem one pixel over hashes within 4 bits of it, so the hash alone would pair
    them, yet is not the same picture."""
    seven, again = _seven(stem_end=12), _seven(stem_end=13)
    copies = {
        "re-saved": _reloaded(seven, "PNG"),
        "10% larger": seven.resize((31, 31), Image.Resampling.LANCZOS),
        "10% smaller": seven.resize((25, 25), Image.Resampling.LANCZOS),
        "10% brighter": ImageEnhance.Brightness(seven).enhance(1.1),
        "10% darker": ImageEnhance.Brightness(seven).enhance(0.9),
        "JPEG": _reloaded(seven, "JPEG", quality=75),
    }

    apart = {name: difference(thumbnail(seven), thumbnail(copy)) for name, copy in copies.items()}
    candidates = near_duplicates({"seven": measure(seven).phash, "again": measure(again).phash})

    assert max(apart.values()) <= MAX_DIFFERENCE, apart
    assert [(a, b) for a, b, _ in candidates] == [("seven", "again")]
    assert difference(thumbnail(seven), thumbnail(again)) > 3 * MAX_DIFFERENCE


def test_candidates_are_confirmed_on_thumbnails_read_from_their_folder(tmp_path: Path) -> None:
    """`thumbnails` reads each distinct image once through its images root, giving the reason
    for one it cannot read; `same_pictures` keeps the pair of a digit and its smaller JPEG
    copy with their difference, and drops a second drawing and pairs with an image unread."""
    _seven(stem_end=12).save(tmp_path / "seven.png")
    _seven(stem_end=12).resize((25, 25), Image.Resampling.LANCZOS).save(
        tmp_path / "copy.jpg", quality=75
    )
    _seven(stem_end=13).save(tmp_path / "again.png")
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    pairs = [
        ("seven.png", "copy.jpg", 2),
        ("seven.png", "again.png", 4),
        ("seven.png", "broken.png", 0),
        ("seven.png", "elsewhere.png", 0),
    ]

    found = thumbnails(tmp_path, ["seven.png", "copy.jpg", "again.png", "broken.png", "copy.jpg"])
    kept = same_pictures(pairs, found)

    assert list(found) == ["seven.png", "copy.jpg", "again.png", "broken.png"]
    assert "not an image" in found["broken.png"] and "broken.png" in found["broken.png"]
    assert [(a, b, d) for a, b, d, _ in kept] == [("seven.png", "copy.jpg", 2)]
    assert 0 < kept[0][3] <= MAX_DIFFERENCE


def test_flat_pictures_are_the_same_only_as_flat_ones_of_about_their_grey() -> None:
    """Two blank pages a few grey levels apart are the same picture; a blank and a black
    page are not, nor a blank page and a picture."""
    white, off_white = Image.new("L", (40, 30), 250), Image.new("L", (40, 30), 240)
    black = Image.new("L", (40, 30), 0)

    assert difference(thumbnail(white), thumbnail(off_white)) == 0
    assert difference(thumbnail(white), thumbnail(black)) == float("inf")
    assert difference(thumbnail(white), thumbnail(_seven(stem_end=12))) == float("inf")


def test_dev_against_train_pairs_only_across_the_two_sets() -> None:
    """With `against`, each pair has a dev image first and a train image second; pairs within
    either set are not reported."""
    dev = {"dev/a.png": "ffff0000ffff0000", "dev/a2.png": "ffff0000ffff0000"}
    train = {"train/a.png": "ffff0000ffff0001", "train/b.png": "0123456789abcdef"}

    pairs = near_duplicates(dev, against=train)

    assert pairs == [("dev/a.png", "train/a.png", 1), ("dev/a2.png", "train/a.png", 1)]
    assert near_duplicates(dev) == [("dev/a.png", "dev/a2.png", 0)]


def test_50000_hashes_are_searched_in_seconds() -> None:
    """50,000 random hashes with 100 planted copies a few bits off: every copy within 4 bits
    is found, and nothing else, in well under the few seconds allowed."""
    rng = np.random.default_rng(4)
    hashes, planted = _planted_hashes(rng, 50_000, copies=100, max_flips=6)

    started = time.perf_counter()
    pairs = near_duplicates(hashes, max_distance=4)

    assert time.perf_counter() - started < 3
    assert {(a, b): d for a, b, d in pairs} == {k: d for k, d in planted.items() if d <= 4}
    assert [d for _, _, d in pairs] == sorted(d for _, _, d in pairs)


@pytest.mark.parametrize("max_distance", [0, 4, 8])
def test_near_duplicates_agree_with_brute_force(max_distance: int) -> None:
    """On 2,000 hashes (with copies up to 10 bits off) the search finds exactly the pairs a
    comparison of every pair finds, within one set and between two."""
    rng = np.random.default_rng(max_distance)
    hashes, _ = _planted_hashes(rng, 1_800, copies=200, max_flips=10)
    names = list(hashes)
    dev = {n: hashes[n] for n in names[::2]}
    train = {n: hashes[n] for n in names[1::2]}

    assert sorted(near_duplicates(hashes, max_distance=max_distance)) == _brute_force(
        hashes, hashes, max_distance
    )
    assert sorted(near_duplicates(dev, against=train, max_distance=max_distance)) == (
        _brute_force(dev, train, max_distance)
    )


def test_a_malformed_hash_is_refused_naming_its_image() -> None:
    """A hash that is not 16 hex digits raises ValueError naming the image."""
    with pytest.raises(ValueError, match="'b.png'"):
        near_duplicates({"a.png": "0" * 16, "b.png": "0x123"})


def test_measure_images_reads_each_image_once_and_says_why_one_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every distinct image is opened once through the images root; a missing, a corrupt and
    a truncated file give reasons naming them; progress counts from 0 up to the total."""
    _scene(300, 200).save(tmp_path / "photo.jpg", quality=90)
    Image.new("L", (28, 28), 30).save(tmp_path / "digit.png")
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    whole = (tmp_path / "photo.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    root = images_root(tmp_path)
    opened: list[str] = []
    real_open = root.open

    def counting_open(image: str):
        opened.append(image)
        return real_open(image)

    monkeypatch.setattr(root, "open", counting_open)
    calls: list[tuple[int, int]] = []
    asked = ["photo.jpg", "digit.png", "photo.jpg", "missing.png", "broken.png", "cut.jpg"]

    found = measure_images(root, asked, workers=3, progress=lambda *call: calls.append(call))

    assert list(found) == ["photo.jpg", "digit.png", "missing.png", "broken.png", "cut.jpg"]
    assert sorted(opened) == sorted(found)
    assert isinstance(found["photo.jpg"], ImageMeasures) and found["photo.jpg"].width == 300
    assert isinstance(found["digit.png"], ImageMeasures) and found["digit.png"].entropy == 0
    assert "not found" in found["missing.png"] and "missing.png" in found["missing.png"]
    assert "not an image" in found["broken.png"] and "broken.png" in found["broken.png"]
    assert "cut.jpg" in found["cut.jpg"]
    assert calls[0] == (0, 5) and calls[-1] == (5, 5)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_a_large_jpeg_read_from_its_folder_measures_like_the_whole_image(tmp_path: Path) -> None:
    """measure_images decodes a 12-megapixel JPEG at a reduced scale yet reports its full size,
    a blur score close to measuring the whole decoded image, and the same hash."""
    _scene(4000, 3000).save(tmp_path / "big.jpg", quality=90)

    found = measure_images(tmp_path, ["big.jpg"])["big.jpg"]
    whole = measure(Image.open(tmp_path / "big.jpg"))

    assert isinstance(found, ImageMeasures)
    assert (found.width, found.height) == (4000, 3000)
    assert found.blur == pytest.approx(whole.blur, rel=0.2)
    assert found.brightness == pytest.approx(whole.brightness, abs=0.01)
    assert _distance(found.phash, whole.phash) <= 2


# --- helpers -----------------------------------------------------------------------------


def _checkerboard(width: int, height: int) -> Image.Image:
    """Squares of 32 pixels, dark and light, with a fine noise texture over them."""
    rows, columns = np.mgrid[0:height, 0:width]
    board = ((rows // 32 + columns // 32) % 2) * 160.0 + 48
    noise = np.random.default_rng(0).normal(0, 12, board.shape)
    return Image.fromarray(np.clip(board + noise, 0, 255).astype(np.uint8)).convert("RGB")


def _scene(width: int, height: int, *, seed: int = 0) -> Image.Image:
    """A photo-like picture: coloured discs of many sizes on a plain background."""
    rng = np.random.default_rng(seed)
    picture = Image.new("RGB", (width, height), (120, 140, 160))
    draw = ImageDraw.Draw(picture)
    for _ in range(30):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(width // 40, width // 6))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    return picture


def _seven(*, stem_end: int) -> Image.Image:
    """A 28x28 white seven on black, blurred as the digits sample blurs (radius 2.5), its stem
    ending `stem_end` pixels from the left."""
    picture = Image.new("L", (28, 28), 0)
    draw = ImageDraw.Draw(picture)
    draw.line([(7, 6), (21, 6), (stem_end, 23)], fill=255, width=3)
    return picture.filter(ImageFilter.GaussianBlur(2.5))


def _reloaded(picture: Image.Image, format: str, **options: int) -> Image.Image:
    """`picture` saved in `format` and opened again."""
    encoded = io.BytesIO()
    picture.save(encoded, format, **options)
    return Image.open(encoded)


def _lit_scene(seed: int) -> Image.Image:
    """A 160x120 scene whose light varies from dusky to light, as real sets do: a background
    (grey level 70 to 190) lit unevenly, a third darker on one side, with discs darker and
    lighter than it."""
    rng = np.random.default_rng(seed)
    level = float(rng.integers(70, 190))
    picture = Image.new("L", (160, 120), 0)
    draw = ImageDraw.Draw(picture)
    for _ in range(6):
        x, y, r = int(rng.integers(0, 160)), int(rng.integers(0, 120)), int(rng.integers(8, 30))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=int(rng.integers(20, 250)))
    discs = np.asarray(picture, dtype=np.float64)
    lit = level * np.linspace(1.0, 0.67, 160)[None, :] * np.ones((120, 1))
    return Image.fromarray(np.where(discs > 0, discs, lit).astype(np.uint8))


def _photographed(scene: Image.Image, *, exposure: float = 1.0) -> Image.Image:
    """The scene as a camera given `exposure` times the usual light takes it: every level
    scaled, then the sensor's noise added."""
    pixels = np.asarray(scene, dtype=np.float64) * exposure
    pixels += np.random.default_rng(1).normal(0, 3, pixels.shape)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


def _ordinary_project(count: int) -> dict[str, ImageMeasures]:
    """`count` photos about 640x480, sharp, mid-bright and detailed, varying a little; each
    one's blur score goes with the square of its contrast, as a photo's does."""
    rng = np.random.default_rng(count)
    project = {}
    for i in range(count):
        width, height = int(rng.integers(600, 680)), int(rng.integers(450, 510))
        sharpness, brightness, contrast = (
            float(np.exp(rng.normal(np.log(300), 0.3))),
            float(rng.normal(0.45, 0.05)),
            float(rng.normal(0.2, 0.03)),
        )
        project[f"ok{i}"] = ImageMeasures(
            blur=sharpness * (contrast / 0.2) ** 2,
            brightness=brightness,
            contrast=contrast,
            entropy=float(rng.normal(7.0, 0.2)),
            width=width,
            height=height,
            aspect=width / height,
            phash=f"{int(rng.integers(0, 2**63)):016x}",
        )
    return project


def _like(project: dict[str, ImageMeasures], **changes: float) -> ImageMeasures:
    """The project's first image with `changes`."""
    return _like_measures(next(iter(project.values())), **changes)


def _like_measures(measures: ImageMeasures, **changes: float) -> ImageMeasures:
    fields = vars(measures) | changes
    fields["aspect"] = fields["width"] / fields["height"]
    return ImageMeasures(**fields)


def _distance(one: str, other: str) -> int:
    return (int(one, 16) ^ int(other, 16)).bit_count()


def _planted_hashes(
    rng: np.random.Generator, count: int, *, copies: int, max_flips: int
) -> tuple[dict[str, str], dict[tuple[str, str], int]]:
    """`count` random 64-bit hashes, and `copies` copies of the first ones with 0 to
    `max_flips` bits flipped: the hashes, and each planted pair with its distance."""
    values = rng.integers(0, 2**64, count, dtype=np.uint64, endpoint=False)
    hashes = {f"img{i}": f"{int(v):016x}" for i, v in enumerate(values)}
    planted = {}
    for i in range(copies):
        flips = i % (max_flips + 1)
        copy = int(values[i])
        for bit in rng.choice(64, flips, replace=False):
            copy ^= 1 << int(bit)
        hashes[f"copy{i}"] = f"{copy:016x}"
        planted[(f"img{i}", f"copy{i}")] = flips
    return hashes, planted


def _brute_force(
    hashes: dict[str, str], against: dict[str, str], max_distance: int
) -> list[tuple[str, str, int]]:
    """Every pair within `max_distance` bits, by comparing each hash with every other."""
    left = np.array([int(h, 16) for h in hashes.values()], dtype=np.uint64)
    right = np.array([int(h, 16) for h in against.values()], dtype=np.uint64)
    distance = np.bitwise_count(left[:, None] ^ right[None, :])
    rows, columns = np.nonzero(distance <= max_distance)
    names, others = list(hashes), list(against)
    within = hashes is against
    return sorted(
        (names[i], others[j], int(distance[i, j]))
        for i, j in zip(rows.tolist(), columns.tolist(), strict=True)
        if not within or i < j
    )
