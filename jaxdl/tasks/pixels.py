"""Images as pixels in [0, 1], for the tasks that learn from images without their labels (autoencoder, GAN).

The tasks that use these loaders give their training step the images alone:
the labels they return are for plots (the autoencoder's codes coloured by
digit) and for the GAN's judge, never for the step.
"""

import ml_collections
import numpy as np

from jaxdl.errors import InputError


def load_pixels(cfg: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """A dataset of images as pixels in [0, 1]: (train images, test images, test labels, image shape).

    Train labels are not returned: the tasks that use this learn without
    them (test labels only colour plots). See `load_labelled_pixels`.
    """
    x_train, _, x_test, y_test, shape = load_labelled_pixels(cfg)
    return x_train, x_test, y_test, shape


def load_labelled_pixels(cfg: ml_collections.ConfigDict) -> tuple[np.ndarray, ...]:
    """(train images, train labels, test images, test labels, image shape), pixels in [0, 1], images flattened.

    `digits` stores each 8x8 image as 64 numbers from 0 to 16; TFDS image
    datasets (mnist, ...) store uint8 pixels. Both are divided by their
    largest possible value, so that a pixel means the same in every split.

    Raises:
      InputError: for a dataset whose rows of features are not square images.
    """
    from jaxdl import data

    splits = data.load(cfg.data.name, data_dir=cfg.data.data_dir, test_fraction=cfg.data.test_fraction,
                       split_seed=cfg.data.split_seed, scaling="none")
    x_train, x_test = np.asarray(splits.train.x, np.float32), np.asarray(splits.test.x, np.float32)
    if x_train.ndim == 2:  # images stored as rows of pixels, such as digits' 8x8
        side = int(round(np.sqrt(x_train.shape[1])))
        if side * side != x_train.shape[1]:
            raise InputError(f"data.name={cfg.data.name!r}: its {x_train.shape[1]} features are not a square image; "
                             "expected images (or rows of pixels of a square image)")
        shape = (side, side)
        top = 16.0 if cfg.data.name == "digits" else float(max(x_train.max(), 1.0))
    else:
        shape = tuple(x_train.shape[1:])
        top = 255.0
    x_train = (x_train.reshape(len(x_train), -1) / top).astype(np.float32)
    x_test = (x_test.reshape(len(x_test), -1) / top).astype(np.float32)
    return x_train, np.asarray(splits.train.y), x_test, np.asarray(splits.test.y), shape


def check_plot_images(value) -> int:
    """The `plot_images` setting, checked: a whole number of images, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"plot_images={value!r}: expected a whole number of images, 0 or more")
    return value


def dataset_info(cfg: ml_collections.ConfigDict, num_train: int, num_test: int, num_pixels: int,
                 image_shape: tuple[int, ...], description: str):
    """The `data.DatasetInfo` of images learnt from without labels: flattened pixels, no classes."""
    from jaxdl import data

    return data.DatasetInfo(name=cfg.data.name, num_examples=num_train + num_test, feature_shape=(num_pixels,),
                            num_classes=None, class_names=(),
                            description=f"{description}: {'x'.join(map(str, image_shape))} images as pixels in [0, 1]")
