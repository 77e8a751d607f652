"""Every image mode an image folder can hold becomes the 8-bit RGB a backbone expects, with exact
pixel values worked out by hand (issue 16, item 3); a folder with one class is refused."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from apbench import data
from apbench.data import DataError
from data_writers import PRE, image


def _one(mode: str):
    """A 4x1 image of ``mode`` and the RGB rows it must become."""
    if mode == "1":
        im = Image.new("1", (4, 1))
        im.putpixel((1, 0), 1)
        im.putpixel((3, 0), 1)
        return im, [(0, 0, 0), (255,) * 3, (0, 0, 0), (255,) * 3]
    if mode == "L":
        return Image.fromarray(np.array([[0, 77, 128, 255]], np.uint8), "L"), [(v,) * 3 for v in (0, 77, 128, 255)]
    if mode == "I;16":  # 16 bits scaled by 257 (65535 -> 255), rounded: 1000 / 257 = 3.89 -> 4
        im = Image.fromarray(np.array([[0, 257, 1000, 65535]], np.uint16))
        return im, [(v,) * 3 for v in (0, 1, 4, 255)]
    if mode == "I":  # 32-bit integers, read as 16-bit: clipped to 0..65535, then / 257
        im = Image.fromarray(np.array([[-5, 514, 70000, 65535]], np.int32))
        return im, [(v,) * 3 for v in (0, 2, 255, 255)]
    if mode == "P":
        im = Image.new("P", (4, 1))
        im.putpalette([10, 20, 30, 200, 100, 50, 0, 255, 7])
        for x, i in enumerate((0, 1, 2, 1)):
            im.putpixel((x, 0), i)
        return im, [(10, 20, 30), (200, 100, 50), (0, 255, 7), (200, 100, 50)]
    if mode == "RGBA":  # alpha dropped (as torchvision's loader does), colour kept even where transparent
        im = Image.fromarray(np.array([[[10, 20, 30, 0], [40, 50, 60, 128], [70, 80, 90, 255], [0, 0, 0, 0]]],
                                      np.uint8), "RGBA")
        return im, [(10, 20, 30), (40, 50, 60), (70, 80, 90), (0, 0, 0)]
    if mode == "CMYK":  # R = (255 - C)(255 - K) / 255, rounded: (245 * 215) / 255 = 206.57 -> 207 ...
        im = Image.fromarray(np.array([[[10, 20, 30, 40], [0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255]]],
                                      np.uint8), "CMYK")
        return im, [(207, 198, 190), (255, 255, 255), (0, 255, 255), (0, 0, 0)]
    raise AssertionError(mode)


MODES = {"1": "png", "L": "png", "I;16": "png", "I": "tif", "P": "png", "RGBA": "png", "CMYK": "tif"}


@pytest.mark.parametrize("mode", list(MODES))
def test_each_image_mode_becomes_exact_8bit_rgb(mode, tmp_path):
    base = tmp_path / "modes"
    im, expected = _one(mode)
    path = base / "train" / "a" / f"x.{MODES[mode]}"
    path.parent.mkdir(parents=True)
    im.save(path)
    with Image.open(path) as back:
        assert back.mode == mode  # the file really holds that mode (16-bit PNGs open as I;16)
    for i in range(2):
        image(base / "train" / "b" / f"{i}.png", 1, i)
    splits = data.build({"format": "image_folder", "path": str(base), "val_fraction": 0.34}, PRE, None)
    pool = splits.train if str(path) in splits.train.paths else splits.val
    rgb = pool.raw(pool.paths.index(str(path)))
    assert rgb.mode == "RGB"
    assert [tuple(int(v) for v in px) for px in np.asarray(rgb)[0]] == expected


def test_a_folder_with_one_class_is_refused(tmp_path):
    for split in ("train", "test"):
        for i in range(3):
            image(tmp_path / "one" / split / "cat" / f"{i}.png", 0, i)
    with pytest.raises(DataError, match=r"1 class found \(cat\); a classification task needs two classes or more"):
        data.build({"format": "image_folder", "path": str(tmp_path / "one")}, PRE, None)
