"""Hostile model files: what a checkpoint or TorchScript file claims is checked and refused
before anything it describes is allocated.

Each refusal runs under an address-space ceiling of 1 GB above what the process already maps:
had the loader tried to build the network a file claims, the allocation would fail there
(and the test with it) instead of taking the machine's memory.
"""

from __future__ import annotations

import contextlib
import resource
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from labeltool.errors import ModelLoadError
from labeltool.predict import MAX_CLASSES, MAX_MODEL_BYTES, load_model

BILLION = 10**9
DIGITS = [str(d) for d in range(10)]
#: The architecture of the sample's model.pt (MNIST-sized digits).
ARCH = "digits-cnn-28x28"
torchscript_is_deprecated = pytest.mark.filterwarnings(
    "ignore:.*torch.jit.*is deprecated:DeprecationWarning"
)


@pytest.fixture
def checkpoint(sample_dir: Path) -> dict:
    """The sample digits checkpoint as a dict: state_dict, arch and classes."""
    return torch.load(sample_dir / "model.pt", weights_only=True)


def test_a_state_dict_claiming_a_billion_classes_is_refused_without_allocating(
    tmp_path: Path, checkpoint: dict
) -> None:
    """An output layer of shape (10^9, 64), stored as one float with zero strides, is refused
    by its class count in well under a second, within the memory ceiling."""
    checkpoint["state_dict"]["output.weight"] = torch.zeros(1).expand(BILLION, 64)
    checkpoint["state_dict"]["output.bias"] = torch.zeros(1).expand(BILLION)
    checkpoint.pop("classes")
    torch.save(checkpoint, path := tmp_path / "billion.pt")
    assert path.stat().st_size < 1_000_000  # the file holds the other layers' weights only

    with (
        _memory_ceiling(),
        _within(seconds=2),
        pytest.raises(ModelLoadError) as caught,
    ):
        load_model(path)

    assert str(caught.value) == (
        f"{path}: the output layer has 1,000,000,000 classes; labeltool accepts at most "
        "100,000 classes"
    )


def test_a_state_dict_whose_hidden_layer_claims_terabytes_is_refused(
    tmp_path: Path, checkpoint: dict
) -> None:
    """A hidden layer claiming 10^9 x 512 floats (2 TB) is refused by the byte budget."""
    checkpoint["state_dict"]["hidden.weight"] = torch.zeros(1).expand(BILLION, 512)
    torch.save(checkpoint, path := tmp_path / "wide.pt")

    with (
        _memory_ceiling(),
        _within(seconds=2),
        pytest.raises(ModelLoadError, match=r"wide\.pt: its tensors claim 1,907\.\d GB, more"),
    ):
        load_model(path)


def test_a_mismatched_shape_is_refused_naming_the_tensor(tmp_path: Path, checkpoint: dict) -> None:
    """A tensor of another shape than the named architecture's is refused by name and shape."""
    rows, columns = checkpoint["state_dict"]["hidden.weight"].shape
    checkpoint["state_dict"]["hidden.weight"] = torch.zeros(rows, columns - 1)
    torch.save(checkpoint, path := tmp_path / "narrow.pt")

    with _memory_ceiling(), pytest.raises(ModelLoadError) as caught:
        load_model(path)

    assert str(caught.value) == (
        f"{path}: state_dict does not fit architecture '{ARCH}': "
        f"hidden.weight is [{rows}, {columns - 1}], needs [{rows}, {columns}]"
    )


def test_a_wrong_key_is_refused_as_missing_and_unexpected(tmp_path: Path, checkpoint: dict) -> None:
    """A state_dict whose output layer has another name is refused, naming both keys."""
    state = checkpoint["state_dict"]
    state["head.weight"] = state.pop("output.weight")
    torch.save(checkpoint, path := tmp_path / "renamed.pt")

    with _memory_ceiling(), pytest.raises(ModelLoadError) as caught:
        load_model(path)

    assert "missing output.weight; unexpected head.weight" in str(caught.value)


def test_more_class_names_than_the_limit_are_refused(sample_dir: Path) -> None:
    """A class list longer than MAX_CLASSES is refused before the model file is read."""
    names = [f"c{i}" for i in range(MAX_CLASSES + 1)]

    with pytest.raises(ModelLoadError, match=r"100,001 class names were given; .* at most 100,000"):
        load_model(sample_dir / "model.pt", class_names=names)


def test_a_zip_entry_declaring_gigabytes_is_refused_before_torch_reads_it(
    tmp_path: Path, checkpoint: dict
) -> None:
    """A checkpoint whose zip directory says its pickle unpacks to 4 GB is refused from that
    directory alone."""
    torch.save(checkpoint, path := tmp_path / "inflated.pt")
    data = bytearray(path.read_bytes())
    entry = data.find(b"PK\x01\x02")  # the first central directory entry
    while entry != -1:
        (name_length,) = struct.unpack_from("<H", data, entry + 28)
        if data[entry + 46 : entry + 46 + name_length].endswith(b"data.pkl"):
            break
        entry = data.find(b"PK\x01\x02", entry + 4)
    assert entry != -1
    struct.pack_into("<I", data, entry + 24, 0xFFFF_0000)  # the uncompressed size
    path.write_bytes(bytes(data))

    with (
        _memory_ceiling(),
        _within(seconds=2),
        pytest.raises(ModelLoadError, match=r"inflated\.pt: its zip entries unpack to 4\.0 GB"),
    ):
        load_model(path)


@torchscript_is_deprecated
def test_a_torchscript_file_claiming_a_billion_classes_is_refused(
    tmp_path: Path, sample_dir: Path
) -> None:
    """A TorchScript digits network whose output weight claims 10^9 rows is refused by its class
    count when loaded, before it could score an image into a (batch, 10^9) tensor."""
    scripted = torch.jit.script(load_model(sample_dir / "model.pt").module)
    scripted.output.weight = torch.nn.Parameter(torch.zeros(1).expand(BILLION, 64))
    torch.jit.save(scripted, str(path := tmp_path / "billion-script.pt"))

    with (
        _memory_ceiling(),
        _within(seconds=5),
        pytest.raises(ModelLoadError, match="the output layer has 1,000,000,000 classes"),
    ):
        load_model(path, arch=ARCH, class_names=DIGITS)


@torchscript_is_deprecated
def test_a_torchscript_file_whose_tensors_claim_terabytes_is_refused(
    tmp_path: Path, sample_dir: Path
) -> None:
    """A TorchScript network with a hidden weight of 10^9 x 512 floats is refused by the
    byte budget, though the file is a few kilobytes."""
    scripted = torch.jit.script(load_model(sample_dir / "model.pt").module)
    scripted.hidden.weight = torch.nn.Parameter(torch.zeros(1).expand(BILLION, 512))
    torch.jit.save(scripted, str(path := tmp_path / "wide-script.pt"))

    with (
        _memory_ceiling(),
        _within(seconds=5),
        pytest.raises(ModelLoadError, match=r"its tensors claim 1,907\.\d GB, more than"),
    ):
        load_model(path, arch=ARCH, class_names=DIGITS)


@torchscript_is_deprecated
def test_a_model_file_over_the_budget_is_refused_before_it_is_opened(
    tmp_path: Path, sample_dir: Path
) -> None:
    """A 3 GB file (a valid TorchScript archive after a sparse gap) is refused by its size."""
    scripted = torch.jit.script(load_model(sample_dir / "model.pt").module)
    torch.jit.save(scripted, str(small := tmp_path / "small.pt"))
    path = tmp_path / "huge.pt"
    with path.open("wb") as handle:
        handle.seek(MAX_MODEL_BYTES + 1024**3)  # a hole: no disk space is used
        handle.write(small.read_bytes())

    with (
        _memory_ceiling(),
        _within(seconds=2),
        pytest.raises(ModelLoadError) as caught,
    ):
        load_model(path, arch=ARCH)

    assert (
        str(caught.value) == f"{path}: the file takes 3.0 GB, more than the 2.0 GB a model may take"
    )


# --- helpers -------------------------------------------------------------------------------


@contextlib.contextmanager
def _memory_ceiling(extra: int = 1024**3) -> Iterator[None]:
    """Limit this process's address space to what it maps now plus `extra` bytes."""
    mapped = _mapped_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = mapped + extra
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _mapped_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    pytest.skip("no /proc/self/status: the memory ceiling needs Linux")


@contextlib.contextmanager
def _within(*, seconds: float) -> Iterator[None]:
    """Fail if the block takes longer than `seconds`."""
    start = time.monotonic()
    yield
    assert time.monotonic() - start < seconds
