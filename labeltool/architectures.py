"""Named model architectures a state_dict can be loaded into, each with its preprocessing.

A state_dict holds only tensors, so to run it we must rebuild the network it came from and
prepare images the way it was trained on them. Each `Architecture` says both: how to build
the (untrained) module for a number of classes, and how to turn an image file into its input
tensor (upright by its EXIF orientation, image mode, input size, per-channel normalisation).
The names of the newer architectures end in their input size (`digits-cnn-28x28`). torch is
imported inside the functions that need it, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labeltool.errors import ModelLoadError

if TYPE_CHECKING:
    import torch
    from PIL import Image

#: The EXIF tag saying how a stored image must be turned to stand upright (1: as stored).
_EXIF_ORIENTATION = 0x0112


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
        """Turn a PIL image into the float tensor (channels, height, width) the network takes.

        A photo stored sideways with an EXIF orientation is turned upright first, as the app
        shows it (`ImageOps.exif_transpose`, as in labeltool.renditions): the model sees what
        the reviewer sees. An image already upright, or without EXIF, is left as it is.
        """
        import numpy as np
        import torch
        from PIL import Image, ImageOps

        if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)
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


def _digits_cnn_28x28(num_classes: int) -> torch.nn.Module:
    """Two 3x3 convolutions, each pooled, and a small classifier for 28x28 greyscale digits
    (MNIST-sized), ~55k weights."""
    from collections import OrderedDict

    from torch import nn

    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(1, 16, kernel_size=3, padding=1),
            relu1=nn.ReLU(),
            pool1=nn.MaxPool2d(2),  # 28x28 -> 14x14
            conv2=nn.Conv2d(16, 32, kernel_size=3, padding=1),
            relu2=nn.ReLU(),
            pool2=nn.MaxPool2d(2),  # 14x14 -> 7x7
            flatten=nn.Flatten(),
            hidden=nn.Linear(32 * 7 * 7, 32),
            relu3=nn.ReLU(),
            output=nn.Linear(32, num_classes),
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


def _tiny_rgb_cnn_64x48(num_classes: int) -> torch.nn.Module:
    """Three narrow conv blocks for 64x48 (4:3, landscape) colour photos, ~60k weights."""
    from collections import OrderedDict

    from torch import nn

    def block(inputs: int, outputs: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(inputs, outputs, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )

    return nn.Sequential(
        OrderedDict(
            block1=block(3, 8),  # 64x48 -> 32x24
            block2=block(8, 16),  # -> 16x12
            block3=block(16, 32),  # -> 8x6
            flatten=nn.Flatten(),
            hidden=nn.Linear(32 * 8 * 6, 32),
            relu=nn.ReLU(),
            output=nn.Linear(32, num_classes),
        )
    )


ARCHITECTURES: dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture(
            name="digits-cnn",
            description="small CNN for 8x8 greyscale digits (scikit-learn's; the old sample's)",
            image_mode="L",
            input_size=(8, 8),
            # Pixel statistics of scikit-learn's digits scaled to [0, 1].
            mean=(0.30,),
            std=(0.38,),
            output_weight="output.weight",
            build=_digits_cnn,
        ),
        Architecture(
            name="digits-cnn-28x28",
            description="small CNN for 28x28 greyscale digits (MNIST-sized; the sample model)",
            image_mode="L",
            input_size=(28, 28),
            # The usual MNIST pixel statistics, scaled to [0, 1].
            mean=(0.1307,),
            std=(0.3081,),
            output_weight="output.weight",
            build=_digits_cnn_28x28,
        ),
        Architecture(
            name="tiny-rgb-cnn-64x48",
            description="tiny CNN for 64x48 colour photos (the sample's shapes)",
            image_mode="RGB",
            input_size=(64, 48),
            # The usual ImageNet statistics.
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
            output_weight="output.weight",
            build=_tiny_rgb_cnn_64x48,
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
