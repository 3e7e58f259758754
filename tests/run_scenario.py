"""The two-run scenario the runs tests share, worked by hand in tests/test_runs.py's docstring:
six dev examples; run 1 gets e1, e2 (cat-as-dog) and e3 (dog-as-cat) wrong; run 2 fixes e2,
still gets e1 (now cat-as-fox) and e3 wrong, and newly gets c1 wrong."""

from __future__ import annotations

from labeltool.importing import ImportSummary, import_predictions

RUN1 = {
    "e1": ("cat", "dog"),
    "e2": ("cat", "dog"),
    "e3": ("dog", "cat"),
    "c1": ("cat", "cat"),
    "c2": ("dog", "dog"),
    "c3": ("fox", "fox"),
}
RUN2 = RUN1 | {"e1": ("cat", "fox"), "e2": ("cat", "cat"), "c1": ("cat", "dog")}


def prediction_rows(predictions: dict[str, tuple[str, str]]) -> list[dict]:
    """Predictions-file rows for {example_id: (label, prediction)}."""
    return [
        {
            "example_id": i,
            "image": f"images/{i}.png",
            "label": label,
            "prediction": prediction,
            "confidence": "0.9",
        }
        for i, (label, prediction) in predictions.items()
    ]


def import_run(
    db, write_predictions, predictions, name: str, project: str = "p", **options
) -> ImportSummary:
    """Write `predictions` to a file called after `name` and import it into `project`."""
    path = write_predictions(prediction_rows(predictions), name=f"{name}-{len(predictions)}.csv")
    with db.begin() as session:
        return import_predictions(session, path, project=project, **options)
