"""More like this and clusters of errors (labeltool.similar), on a real project of real images
with a known answer: three families of pictures (stripes, checkerboards, a blob), each image
its family's pattern at its own brightness and contrast, with noise."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score
from sqlalchemy import select

from labeltool import embeddings
from labeltool.db import Database
from labeltool.importing import import_predictions
from labeltool.models import Embedding, Example
from labeltool.projects import get_project
from labeltool.runs import get_run
from labeltool.similar import (
    NoEmbedding,
    Space,
    clusters,
    default_cluster_count,
    embed_pixels,
    neighbours,
    pixel_vector,
    space,
)

FAMILIES = ("stripes", "checkers", "blob")
PER_FAMILY = 8
#: A slightly noisy copy of stripes-03: its nearest neighbour must be that image.
COPY, ORIGINAL = "copy", "stripes-03"
#: An error whose image file is missing, and one whose file is no image.
MISSING, BROKEN = "missing", "broken"


@dataclass(frozen=True)
class Project:
    project_id: int
    run_id: int
    #: example_id -> pk.
    pks: dict[str, int]
    #: pk -> family of the dev errors that have a readable image.
    family: dict[int, str]


def _pattern(family: str, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """The family's pattern (0..1) at `size` (width, height), a blob moved a little."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    if family == "stripes":
        return (np.floor(y * 4) % 2).astype(float)
    if family == "checkers":
        return ((np.floor(y * 4) + np.floor(x * 4)) % 2).astype(float)
    cy, cx = 0.5 + rng.uniform(-0.04, 0.04, size=2)
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 0.03)


def _picture(
    family: str, rng: np.random.Generator, *, noise: float, size=(32, 32), colour=False
) -> np.ndarray:
    """The family's pattern at a random brightness and contrast, with Gaussian noise."""
    low, contrast = rng.uniform(10, 90), rng.uniform(90, 160)
    grey = low + contrast * _pattern(family, rng, size) + rng.normal(0, noise, size[::-1])
    grey = np.clip(grey, 0, 255)
    return np.stack([grey] * 3, axis=-1) if colour else grey


def _save(array: np.ndarray, path: Path) -> None:
    Image.fromarray(np.rint(array).astype(np.uint8)).save(path)


@pytest.fixture
def project(db: Database, write_predictions) -> Project:
    """24 dev errors in three families (sizes, aspect and colour mode vary), a noisy copy of
    one, an error whose image is missing and one whose file is no image; 4 correctly
    classified dev examples and 2 train errors, which are never embedded."""
    rng = np.random.default_rng(7)
    rows, pictures = [], {}
    for family in FAMILIES:
        for i in range(PER_FAMILY):
            example_id = f"{family}-{i:02d}"
            size = ((32, 32), (48, 40), (28, 28), (64, 48))[i % 4]
            pictures[example_id] = _picture(family, rng, noise=25, size=size, colour=i % 2 == 1)
            rows.append(_row(example_id, error=True))
    original = pictures[ORIGINAL]
    pictures[COPY] = np.clip(original + rng.normal(0, 3, original.shape), 0, 255)
    rows.append(_row(COPY, error=True))
    rows += [_row(MISSING, error=True), _row(BROKEN, error=True)]
    for i in range(4):
        pictures[f"right-{i}"] = _picture(FAMILIES[i % 3], rng, noise=25)
        rows.append(_row(f"right-{i}", error=False))
    for i in range(2):
        pictures[f"train-{i}"] = _picture(FAMILIES[i % 3], rng, noise=25)
        rows.append(_row(f"train-{i}", error=True, split="train"))

    path = write_predictions(rows)
    folder = path.parent
    for example_id, array in pictures.items():
        _save(array, folder / "images" / f"{example_id}.png")
    (folder / "images" / f"{MISSING}.png").unlink()
    (folder / "images" / f"{BROKEN}.png").write_bytes(b"not a png at all")

    with db.begin() as session:
        import_predictions(session, path, project="p", check_images="none")
        project_id = get_project(session, "p").id
        run_id = get_run(session, project_id=project_id).id
        pks = {e: pk for e, pk in session.execute(select(Example.example_id, Example.id))}
    family = {pks[e]: e.split("-")[0] for e in pictures if e.split("-")[0] in FAMILIES}
    family[pks[COPY]] = "stripes"
    return Project(project_id, run_id, pks, family)


def _row(example_id: str, *, error: bool, split: str = "dev") -> dict:
    return {
        "example_id": example_id,
        "image": f"images/{example_id}.png",
        "label": "a",
        "prediction": "b" if error else "a",
        "split": split,
    }


def _embedded(db: Database, project: Project) -> Space:
    with db.begin() as session:
        embed_pixels(session, project_id=project.project_id, run_id=project.run_id)
    with db.begin() as session:
        return space(session, run_id=project.run_id)


# --- embed_pixels ------------------------------------------------------------------------


def test_pixel_embeddings_are_made_for_the_dev_errors_with_a_readable_image(
    db: Database, project: Project
) -> None:
    """Every dev error whose image can be read gets a 128-number pixel vector; the missing
    and the broken image are counted as unreadable, correct examples and train errors get
    none, and progress reports the errors to do."""
    calls = []
    with db.begin() as session:
        done = embed_pixels(
            session,
            project_id=project.project_id,
            run_id=project.run_id,
            progress=lambda d, t: calls.append((d, t)),
        )
    assert (done.stored, done.already, done.unreadable) == (25, 0, 2)
    assert calls == [(0, 27), (27, 27)]
    assert "25 pixel embeddings stored" in str(done) and "2 images unreadable" in str(done)
    with db.begin() as session:
        found = space(session, run_id=project.run_id)
    assert set(found.pks.tolist()) == set(project.family)
    assert found.source == embeddings.PIXELS
    assert found.matrix.shape == (25, 128) and found.matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(found.matrix, axis=1), 1.0, rtol=1e-5)


def test_a_second_call_stores_nothing(db: Database, project: Project) -> None:
    """Errors with a pixel vector from an earlier call are skipped: a second call stores
    none (the unreadable images are tried again, and counted again)."""
    with db.begin() as session:
        embed_pixels(session, project_id=project.project_id, run_id=project.run_id)
        before = {e.example_pk: e.vector for e in session.scalars(select(Embedding))}
    with db.begin() as session:
        second = embed_pixels(session, project_id=project.project_id, run_id=project.run_id)
        after = {e.example_pk: e.vector for e in session.scalars(select(Embedding))}
    assert (second.stored, second.already, second.unreadable) == (0, 25, 2)
    assert after == before and len(after) == 25


def test_the_models_features_are_never_replaced_nor_mixed_with_pixels(
    db: Database, project: Project
) -> None:
    """A run that has any of the model's own features gets no pixel vectors (they could not
    be compared with the model's): its model vectors stay as they were, and the space holds
    those alone."""
    model_pks = sorted([project.pks["blob-00"], project.pks["checkers-01"]])
    model_vectors = np.arange(2 * 300, dtype=np.float32).reshape(2, 300)
    with db.begin() as session:
        embeddings.save(session, pks=model_pks, vectors=model_vectors, source="model")
    with db.begin() as session:
        done = embed_pixels(session, project_id=project.project_id, run_id=project.run_id)
        pks, matrix, _ = embeddings.load(session, pks=project.pks.values())
    assert (done.stored, done.already, done.model_features) == (0, 2, True)
    assert "model's own features" in str(done)
    assert pks.tolist() == model_pks
    np.testing.assert_array_equal(matrix, model_vectors)


def test_the_space_keeps_the_models_features_when_pixels_came_first(
    db: Database, project: Project
) -> None:
    """When the model's features arrive for some errors after pixels were embedded, the
    space holds the model's vectors only, unit length, and says so."""
    with db.begin() as session:
        embed_pixels(session, project_id=project.project_id, run_id=project.run_id)
    model_pks = sorted([project.pks["blob-00"], project.pks["checkers-01"]])
    with db.begin() as session:
        embeddings.save(
            session, pks=model_pks, vectors=np.array([[3.0, 4.0], [0.0, 2.0]]), source="model"
        )
    with db.begin() as session:
        found = space(session, run_id=project.run_id)
    assert found.pks.tolist() == model_pks and found.source == "model"
    np.testing.assert_allclose(found.matrix, [[0.6, 0.8], [0.0, 1.0]])


def test_a_stopped_embedding_keeps_the_batches_it_finished(
    db: Database, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch is flushed before the next is read, so when a run stops (here: after the
    first batch of 10) the vectors of that batch are there for the next call to build on."""
    monkeypatch.setattr("labeltool.similar.BATCH", 10)

    def stop(done: int, total: int) -> None:
        if done == 10:
            raise KeyboardInterrupt

    with db.begin() as session:
        with pytest.raises(KeyboardInterrupt):
            embed_pixels(
                session, project_id=project.project_id, run_id=project.run_id, progress=stop
            )
        assert embeddings.count(session, run_id=project.run_id) == 10
        session.commit()  # the caller keeps what was done
    with db.begin() as session:
        resumed = embed_pixels(session, project_id=project.project_id, run_id=project.run_id)
    assert (resumed.stored, resumed.already) == (15, 10)


def test_a_pixel_vector_ignores_brightness_and_contrast() -> None:
    """A brighter, higher-contrast copy of a picture is the same vector; a flat picture is
    all zeros, like nothing."""
    rng = np.random.default_rng(1)
    grey = rng.uniform(50, 150, size=(20, 30))
    one = pixel_vector(Image.fromarray(grey.astype(np.float32)))
    other = pixel_vector(Image.fromarray(np.clip(grey * 1.5 + 20, 0, 255).astype(np.float32)))
    np.testing.assert_allclose(one, other, atol=1e-5)
    assert one.shape == (128,) and np.linalg.norm(one) == pytest.approx(1.0)
    assert not pixel_vector(Image.new("L", (12, 12), 90)).any()


# --- neighbours ---------------------------------------------------------------------------


def test_a_noisy_copy_is_the_nearest_neighbour_and_its_family_follows(
    db: Database, project: Project
) -> None:
    """The copy's nearest error is its original, then the other stripes, nearest first; the
    example itself is never among its neighbours."""
    found = _embedded(db, project)
    near = neighbours(found, project.pks[COPY], k=PER_FAMILY)
    assert near[0][0] == project.pks[ORIGINAL]
    assert near[0][1] < 0.05
    assert [project.family[pk] for pk, _ in near] == ["stripes"] * PER_FAMILY
    assert [d for _, d in near] == sorted(d for _, d in near)
    assert project.pks[COPY] not in {pk for pk, _ in near}
    assert len(neighbours(found, project.pks[COPY], k=100)) == 24


def test_neighbours_among_a_set_of_errors_only(db: Database, project: Project) -> None:
    """`among` restricts the candidates (pks outside the space are ignored): among the blobs
    and the original, the original comes first, then blobs only."""
    found = _embedded(db, project)
    blobs = [pk for pk, family in project.family.items() if family == "blob"]
    among = {*blobs, project.pks[ORIGINAL], project.pks[MISSING], project.pks[COPY]}
    near = neighbours(found, project.pks[COPY], k=5, among=among)
    assert near[0][0] == project.pks[ORIGINAL]
    assert {pk for pk, _ in near[1:]} <= set(blobs) and len(near) == 5
    assert neighbours(found, project.pks[COPY], among=[project.pks[COPY]]) == []


def test_an_example_without_an_embedding_is_refused_with_what_to_do(
    db: Database, project: Project
) -> None:
    """Asking for errors like one whose image could not be read says there is no embedding
    and how to make them."""
    found = _embedded(db, project)
    with pytest.raises(NoEmbedding, match=r"no embedding.*labeltool analyze"):
        neighbours(found, project.pks[MISSING])


# --- clusters -----------------------------------------------------------------------------


def test_three_clusters_are_the_three_families(db: Database, project: Project) -> None:
    """k-means with 3 clusters recovers the families exactly; each cluster lists its members
    nearest the centroid first, the largest (the stripes and their copy) is number 1."""
    found = _embedded(db, project)
    made = clusters(found, n_clusters=3)
    assert [c.number for c in made] == [1, 2, 3]
    assert [c.size for c in made] == [PER_FAMILY + 1, PER_FAMILY, PER_FAMILY]
    predicted = {pk: c.number for c in made for pk in c.members}
    pks = sorted(project.family)
    truth = [project.family[pk] for pk in pks]
    assert adjusted_rand_score(truth, [predicted[pk] for pk in pks]) == 1.0
    assert project.family[made[0].representative] == "stripes"
    for cluster in made:
        assert cluster.representative == cluster.members[0]
        assert 0 < cluster.spread < 0.5
        centroid = found.matrix[found.rows(cluster.members)].mean(axis=0)
        centroid /= np.linalg.norm(centroid)
        by_pk = dict(zip(found.pks.tolist(), 1 - found.matrix @ centroid, strict=True))
        distances = [by_pk[pk] for pk in cluster.members]
        assert distances == sorted(distances)
        assert cluster.spread == pytest.approx(np.mean(distances), abs=1e-6)


def test_clusters_are_the_same_for_the_same_seed_and_cover_the_pks_given(
    db: Database, project: Project
) -> None:
    """Clustering a subset (as the page does with the untagged errors) uses only those pks,
    by default in default_cluster_count of them, and the same seed gives the same clusters."""
    found = _embedded(db, project)
    subset = [pk for pk, family in project.family.items() if family != "blob"]
    first = clusters(found, pks=[*subset, project.pks[MISSING]], seed=3)
    again = clusters(found, pks=subset, seed=3)
    assert first == again
    assert sorted(pk for c in first for pk in c.members) == sorted(subset)
    assert len(first) == default_cluster_count(len(subset)) == 3


def test_no_error_gives_no_cluster_and_one_error_one_cluster(
    db: Database, project: Project
) -> None:
    """Nothing to cluster is no cluster; a single error is one cluster of itself; asking for
    more clusters than errors gives one per error."""
    found = _embedded(db, project)
    one = project.pks["blob-02"]
    assert clusters(found, pks=[]) == []
    assert clusters(found, pks=[project.pks[MISSING]]) == []
    (single,) = clusters(found, pks=[one])
    assert (single.number, single.members, single.size, single.spread) == (1, [one], 1, 0.0)
    two = clusters(found, pks=[one, project.pks["stripes-00"]], n_clusters=5)
    assert sorted(c.size for c in two) == [1, 1]


def test_a_run_without_embeddings_has_an_empty_space(db: Database, project: Project) -> None:
    """Before any embedding, the space is empty: no clusters, and any neighbour query says
    what to run."""
    with db.begin() as session:
        empty = space(session, run_id=project.run_id)
    assert len(empty) == 0 and empty.source is None
    assert clusters(empty) == []
    with pytest.raises(NoEmbedding):
        neighbours(empty, project.pks[COPY])


def test_default_cluster_count_follows_the_square_root_rule() -> None:
    """About sqrt(n / 2), at least 2, at most 40 and never more than the errors."""
    assert [default_cluster_count(n) for n in (1, 2, 8, 100, 3_200, 100_000)] == [
        1,
        2,
        2,
        7,
        40,
        40,
    ]
