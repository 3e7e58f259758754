"""The named architectures: each network takes its own input size, and preprocessing turns a
photo upright by its EXIF orientation first, as the app shows it."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image, ImageOps

from labeltool.architectures import ARCHITECTURES, get_architecture

#: EXIF orientation -> how the upright picture is turned to store it (exif_transpose undoes it).
STORED = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


def _upright() -> Image.Image:
    """A 64x48 landscape picture whose every pixel differs, so any turn changes it."""
    picture = Image.new("RGB", (64, 48))
    picture.putdata([(x * 4, y * 5, (x + y) % 256) for y in range(48) for x in range(64)])
    return picture


def _stored(picture: Image.Image, orientation: int) -> Image.Image:
    """`picture` stored as a camera turned by `orientation` stores it: PNG bytes, decoded."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    picture.transpose(STORED[orientation]).save(buffer, format="PNG", exif=exif.tobytes())
    stored = Image.open(io.BytesIO(buffer.getvalue()))
    stored.load()
    return stored


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_each_network_scores_a_batch_of_its_input_size(name: str) -> None:
    """A preprocessed image of any size becomes the architecture's input, and the network
    returns one score per class for each image of a batch."""
    architecture = get_architecture(name)
    tensor = architecture.preprocess(_upright())
    channels = 1 if architecture.image_mode == "L" else 3
    width, height = architecture.input_size
    assert tensor.shape == (channels, height, width)
    network = architecture.build(7).eval()
    with torch.inference_mode():
        scores = network(torch.stack([tensor, tensor]))
    assert scores.shape == (2, 7)


@pytest.mark.parametrize("orientation", sorted(STORED))
@pytest.mark.parametrize("name", ["tiny-rgb-cnn-64x48", "digits-cnn-28x28"])
def test_a_photo_stored_sideways_is_preprocessed_upright(name: str, orientation: int) -> None:
    """A picture stored turned, with the EXIF orientation saying so, gives exactly the input
    tensor of the upright picture (what the app shows), not of the stored pixels."""
    architecture = get_architecture(name)
    upright = architecture.preprocess(_upright())
    stored = _stored(_upright(), orientation)
    assert stored.size == ((48, 64) if orientation in (6, 8) else (64, 48))

    pixels_only = Image.frombytes(stored.mode, stored.size, stored.tobytes())  # no EXIF
    assert torch.equal(architecture.preprocess(stored), upright)
    assert not torch.equal(architecture.preprocess(pixels_only), upright)
    # Turning it upright before (as a caller might) changes nothing: the tag is gone then.
    assert torch.equal(architecture.preprocess(ImageOps.exif_transpose(stored)), upright)
