"""Options of ``sig preprocess``, and the output-size limits they are checked against."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PositiveInt, field_validator

from sigcli.config.common import Json, Overwrite, UserRange, Workers
from sigcli.errors import InputError
from sigcli.options import Cli, Options

#: Size images are resized to (H, W); training crops 150×220 out of it later.
IMAGE_SIZE = (170, 242)
#: Largest output image (--image-size), in pixels: 2048×2048, 100 times the usual 170×242; a
#: set holds one per signature (in memory until saved, for the .npz format).
MAX_OUTPUT_PIXELS = 2048 * 2048
#: Largest image read, in pixels, checked in its header before it is decoded: a 600-dpi A4
#: scan is 35 M pixels, and an image is held as float64 (8 bytes a pixel) while it is
#: centred, so 50 M take 400 MB in each worker. Larger ones are skipped, named.
MAX_IMAGE_PIXELS = 50_000_000
#: Largest canvas, in pixels, and largest image the canvas is resized through on its way to
#: the output size: it holds one signature, never more than the largest image read. The
#: largest dataset canvas (GPDS-synthetic, 2078×3307) is 6.9 M.
MAX_CANVAS_PIXELS = MAX_IMAGE_PIXELS


def resized_shape(shape: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """The shape an image of ``shape`` is scaled to, keeping its ratio, before its centre is cropped to ``size``."""
    width_ratio, height_ratio = shape[1] / size[1], shape[0] / size[0]
    if width_ratio > height_ratio:
        return size[0], int(round(shape[1] / height_ratio))
    return int(round(shape[0] / width_ratio)), size[1]


def check_canvas(canvas_size: tuple[int, int], image_size: tuple[int, int], what: str) -> None:
    """Refuse, before anything is allocated, a canvas (``what`` names it, e.g. ``--canvas``) past
    :data:`MAX_CANVAS_PIXELS`, an output size past :data:`MAX_OUTPUT_PIXELS`, and a pair whose
    resize passes through an image past :data:`MAX_CANVAS_PIXELS` (a 1×100000 output of a
    600×850 canvas would pass through 70588×100000 pixels). ``sig preprocess`` and ``sig verify``
    check every canvas here."""
    (height, width), (out_height, out_width) = canvas_size, image_size
    if height * width > MAX_CANVAS_PIXELS:
        raise InputError(f"{what} {height}×{width} is {height * width:,} pixels, more than the "
                         f"{MAX_CANVAS_PIXELS:,} sig allows", "give a smaller canvas, or scan at a lower resolution")
    if out_height * out_width > MAX_OUTPUT_PIXELS:
        raise InputError(f"the image size {out_height}×{out_width} is {out_height * out_width:,} pixels, more than "
                         f"the {MAX_OUTPUT_PIXELS:,} sig allows", f"the usual size is {IMAGE_SIZE[0]} {IMAGE_SIZE[1]}")
    through = resized_shape(canvas_size, image_size)
    if through[0] * through[1] > MAX_CANVAS_PIXELS:
        raise InputError(f"image size {out_height}×{out_width} would resize {what} ({height}×{width}) through "
                         f"{through[0]}×{through[1]} = {through[0] * through[1]:,} pixels, more than the "
                         f"{MAX_CANVAS_PIXELS:,} sig allows", "give a size closer to the canvas's shape")

#: ``auto``: a folder when --save-path ends with '/', else a .npz file.
OutputFormat = Literal["auto", "npz", "folder"]


class PreprocessOptions(Options):
    """Options of ``sig preprocess``: which raw dataset, where the signature set goes, its image size."""

    dataset: str = Field(description="Dataset loader name (see 'sig datasets'), e.g. gpds, cedar.")
    raw_path: Annotated[Path, Cli("--path")] = Field(description="Root folder of the raw dataset.")
    save_path: str = Field(description="Output: a .npz file, or a folder of .npy files when it ends with '/'.")
    # text, so that a trailing '/' (the folder format) survives
    users: UserRange = Field(None, description="Only the users at positions FIRST..LAST-1 of the dataset's sorted "
                                               "user list (LAST excluded).")
    image_size: Annotated[tuple[PositiveInt, PositiveInt], Cli(metavar="HEIGHT WIDTH")] = Field(
        IMAGE_SIZE, description="Height and width of the saved images.")
    workers: Workers = Field(None, description="Worker processes; the output is the same for any number.")
    format: OutputFormat = Field("auto", description="npz, folder, or auto (folder when --save-path ends with '/').")
    overwrite: Overwrite = False
    dedupe: bool = Field(False, description="Leave out files byte-identical to an earlier file of the same writer "
                                            "(off by default: copies are kept, and reported for datasets known to "
                                            "hold them).")
    loader_options: Annotated[dict[str, str], Cli(flag="--loader-option", metavar="KEY=VALUE")] = Field(
        default_factory=dict, description="An option of the dataset loader, e.g. canvas=952x1360 for 'folder'; "
                                          "repeatable. 'sig datasets NAME' lists a loader's options.")
    as_json: Json = Field(False, description="Print the run's summary as JSON on stdout instead of tables.")

    @field_validator("loader_options", mode="before")
    @classmethod
    def _loader_options(cls, value: object) -> object:
        """``KEY=VALUE`` texts, as the command line gives them, become a mapping."""
        if not isinstance(value, (list, tuple)):
            return value
        pairs = [str(item).partition("=") for item in value]
        bad = next((key for key, equals, _ in pairs if not equals or not key.strip()), None)
        if bad is not None:
            raise InputError(f"--loader-option {bad!r} is not KEY=VALUE", "e.g. --loader-option canvas=952x1360")
        return {key.strip(): option for key, _, option in pairs}

    @field_validator("image_size")
    @classmethod
    def _image_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] * value[1] > MAX_OUTPUT_PIXELS:
            raise InputError(f"--image-size {value[0]} {value[1]} is {value[0] * value[1]:,} pixels, more than the "
                             f"{MAX_OUTPUT_PIXELS:,} sig allows", f"give HEIGHT WIDTH, e.g. the default "
                                                                  f"{IMAGE_SIZE[0]} {IMAGE_SIZE[1]}")
        return value

    @property
    def output_format(self) -> Literal["npz", "folder"]:
        if self.format != "auto":
            return self.format
        return "folder" if self.save_path.endswith(("/", os.sep)) else "npz"

    @property
    def output(self) -> Path:
        """Where the set is written; a .npz file gets the suffix numpy (and the reference) adds."""
        path = Path(self.save_path)
        if self.output_format == "npz" and path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        return path
