"""Named model architectures a state_dict can be loaded into, each with its preprocessing.

A state_dict holds only tensors, so to run it we must rebuild the network it came from and
prepare images the way it was trained on them. Each `Architecture` says both: how to build
the (untrained) module for a number of classes, and how to turn an image file into its input
tensor (image mode, input size, per-channel normalisation). torch is imported inside the
functions that need it, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labeltool.errors import ModelLoadError

if TYPE_CHECKING:
    import torch
    from PIL import Image


@dataclass(frozen=True)
class Architecture:
    """How to build a network and how to prepare an image for it."""

    name: str
    description: str
    #: PIL mode the image is converted to: "L" (greyscale, 1 channel) or "RGB" (3 channels).
    image_mode: str
    #: (width, height) the image is resized to when it has another size.
    input_size: tuple[int, int]
    #: Per-channel mean and standard deviation of pixel values scaled to [0, 1].
    mean: tuple[float, ...]
    std: tuple[float, ...]
    #: The state_dict key of the output layer's weight: its first dimension is the class count.
    output_weight: str
    build: Callable[[int], torch.nn.Module]

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """Turn a PIL image into the float tensor (channels, height, width) the network takes."""
        import numpy as np
        import torch
        from PIL import Image

        image = image.convert(self.image_mode)
        if image.size != self.input_size:
            image = image.resize(self.input_size, Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32) / 255.0
        pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        return torch.from_numpy(np.ascontiguousarray((pixels - mean) / std))


def get_architecture(name: str) -> Architecture:
    """The architecture registered as `name`, or ModelLoadError listing the known ones."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ModelLoadError(
            f"unknown architecture '{name}' (known: {', '.join(ARCHITECTURES)})"
        ) from None


# --- the networks ----------------------------------------------------------------------


def _digits_cnn(num_classes: int) -> torch.nn.Module:
    """Two 3x3 convolutions and a small classifier for 8x8 greyscale digits (~38k weights)."""
    from collections import OrderedDict

    from torch import nn

    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(1, 16, kernel_size=3, padding=1),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(16, 32, kernel_size=3, padding=1),
            relu2=nn.ReLU(),
            pool=nn.MaxPool2d(2),  # 8x8 -> 4x4
            flatten=nn.Flatten(),
            hidden=nn.Linear(32 * 4 * 4, 64),
            relu3=nn.ReLU(),
            output=nn.Linear(64, num_classes),
        )
    )


def _small_rgb_cnn(num_classes: int) -> torch.nn.Module:
    """Three conv blocks for 32x32 colour images (CIFAR-sized), ~0.3M weights."""
    from collections import OrderedDict

    from torch import nn

    def block(inputs: int, outputs: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(inputs, outputs, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )

    return nn.Sequential(
        OrderedDict(
            block1=block(3, 32),  # 32 -> 16
            block2=block(32, 64),  # 16 -> 8
            block3=block(64, 128),  # 8 -> 4
            flatten=nn.Flatten(),
            hidden=nn.Linear(128 * 4 * 4, 128),
            relu=nn.ReLU(),
            output=nn.Linear(128, num_classes),
        )
    )


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture(
            name="digits-cnn",
            description="small CNN for 8x8 greyscale digits (the sample model)",
            image_mode="L",
            input_size=(8, 8),
            # Pixel statistics of scikit-learn's digits scaled to [0, 1].
            mean=(0.30,),
            std=(0.38,),
            output_weight="output.weight",
            build=_digits_cnn,
        ),
        Architecture(
            name="small-rgb-cnn",
            description="small CNN for 32x32 colour images (CIFAR-sized)",
            image_mode="RGB",
            input_size=(32, 32),
            # The usual ImageNet statistics.
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
            output_weight="output.weight",
            build=_small_rgb_cnn,
        ),
    )
}
