"""Batches for training and extraction, read straight from (memory-mapped) signature arrays.

Nothing here materialises a set: a :class:`Rows` is a list of row numbers into ``x``; a
batch's rows are read in ascending order, cropped as one batched array (random 150×220
crops for training, the centre crop otherwise — docs/preprocessing.md#crops-at-the-network) and scaled to [0, 1]
(docs/formats.md#pixel-values-at-the-network). A background thread reads the next batches while
the network works. Rows of a memory-mapped ``x`` are read from its file into the batch
(not through the map), so memory stays flat however large the set.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import queue
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple, TypeVar

import numpy as np
import torch

from sigcli.data.sigset import SignatureSet
from sigcli.errors import InputError
from sigcli.models import INPUT_SIZE

T = TypeVar("T")
TRAIN_FRACTION = 0.9  # train / validation split of the selected signatures (docs/training.md#data-split-and-batches)


class Batch(NamedTuple):
    x: torch.Tensor  # B×1×h×w float in [0, 1], on the target device
    y: torch.Tensor  # B int64 labels
    yforg: torch.Tensor  # B int64: 0 genuine, 1 skilled, 2 simple
    index: np.ndarray  # B positions into the Rows, in the order of the batch


@dataclass
class Rows:
    """Selected signatures of a set as row numbers into its (possibly memory-mapped) ``x``."""

    x: np.ndarray
    rows: np.ndarray
    y: np.ndarray
    yforg: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def select(cls, sigset: SignatureSet, users: tuple[int, int] | None = None, genuine_only: bool = False,
               labels: np.ndarray | None = None) -> "Rows":
        """Users in ``[first, last)`` (all when ``None``), optionally without forgeries.

        ``labels`` replaces ``y`` (aligned with the whole set), e.g. users re-encoded 0..U-1.
        """
        keep = np.ones(len(sigset), dtype=bool)
        if users is not None:
            keep &= (sigset.y >= users[0]) & (sigset.y < users[1])
        if genuine_only:
            keep &= sigset.yforg == 0
        rows = np.flatnonzero(keep)
        y = sigset.y if labels is None else labels
        return cls(sigset.x, rows, np.asarray(y)[rows], np.asarray(sigset.yforg)[rows])


def split_train_val(n: int, seed: int, train_fraction: float = TRAIN_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """A random ``int(0.9 n)`` / rest split of ``range(n)`` (the reference's random_split sizes)."""
    n_train = int(train_fraction * n)
    if n_train == 0 or n_train == n:
        raise InputError(f"{n} signatures cannot be split {train_fraction:.0%} / {1 - train_fraction:.0%} into "
                         "non-empty training and validation sets", "select more users or signatures")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(order[:n_train]), np.sort(order[n_train:])


def batches(rows: Rows, order: np.ndarray, batch_size: int, device: torch.device | str = "cpu", *,
            generator: torch.Generator | None = None, input_size: tuple[int, int] = INPUT_SIZE,
            prefetch_depth: int = 2) -> Iterator[Batch]:
    """Batches of ``rows`` at ``order`` (positions), in that order, read ahead in a background thread.

    With ``generator`` every image gets a random crop drawn from it; without, the centre crop.
    A final batch of one image is dropped when training (batch norm cannot train on it).
    The thread only reads and (on CPU) crops, single-threaded numpy work; the conversion to
    float runs here, in the caller's thread, so that torch's thread pool is never shared
    with a second thread while the network runs. On a GPU the crop runs there too.
    """
    device = torch.device(device)
    check_image_size(rows.x.shape[2:], input_size)
    starts = range(0, len(order), batch_size)[:num_batches(len(order), batch_size, training=generator is not None)]

    def read() -> Iterator[tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None, np.ndarray]]:
        reader = _RowReader(rows.x)
        try:
            for start in starts:
                positions = order[start:start + batch_size]
                positions = positions[np.argsort(rows.rows[positions], kind="stable")]  # sequential reads
                images = torch.from_numpy(reader.read(rows.rows[positions]))
                offsets = None if generator is None else random_offsets(len(images), images.shape[2:], input_size,
                                                                        generator)
                if device.type == "cuda":
                    yield images.pin_memory(), offsets, positions
                else:
                    yield _crop(images, offsets, input_size), None, positions
        finally:
            reader.close()

    for images, offsets, positions in prefetch(read(), prefetch_depth):
        if device.type == "cuda":
            images = _crop(images.to(device, non_blocking=True), offsets, input_size)
        yield Batch(to_unit(images), torch.from_numpy(rows.y[positions]).to(device),
                    torch.from_numpy(rows.yforg[positions]).to(device), positions)


def _crop(images: torch.Tensor, offsets: tuple[torch.Tensor, torch.Tensor] | None,
          input_size: tuple[int, int]) -> torch.Tensor:
    return center_crop(images, input_size) if offsets is None else crop(images, *offsets, input_size)


def num_batches(n: int, batch_size: int, training: bool) -> int:
    """Batches of ``batch_size`` that ``n`` items make; when ``training``, without a final batch of
    one item (batch norm cannot train on it), unless it is the only one."""
    count = -(-n // batch_size)
    return count - 1 if training and n % batch_size == 1 and n > 1 else count


def check_image_size(image_size: tuple[int, ...], input_size: tuple[int, int] = INPUT_SIZE) -> None:
    if image_size[0] < input_size[0] or image_size[1] < input_size[1]:
        raise InputError(f"images are {image_size[0]}×{image_size[1]}, smaller than the network's "
                         f"{input_size[0]}×{input_size[1]} input", "preprocess them with 'sig preprocess'")


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Network input in [0, 1]: uint8 divided by 255, float as it is (docs/formats.md#pixel-values-at-the-network)."""
    if images.dtype == torch.uint8:
        return images.float().div_(255)
    return images.float()


def center_offsets(image_size: tuple[int, ...], input_size: tuple[int, int] = INPUT_SIZE) -> tuple[int, int]:
    """Top-left corner of the centre crop, computed as torchvision's CenterCrop does."""
    return (int(round((image_size[0] - input_size[0]) / 2.0)), int(round((image_size[1] - input_size[1]) / 2.0)))


def center_crop(images: torch.Tensor, input_size: tuple[int, int] = INPUT_SIZE) -> torch.Tensor:
    top, left = center_offsets(images.shape[2:], input_size)
    return images[:, :, top:top + input_size[0], left:left + input_size[1]]


def random_offsets(n: int, image_size: tuple[int, ...], input_size: tuple[int, int],
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform top-left corners of ``n`` crops (as RandomCrop draws them, one per image)."""
    tops = torch.randint(0, image_size[0] - input_size[0] + 1, (n,), generator=generator)
    lefts = torch.randint(0, image_size[1] - input_size[1] + 1, (n,), generator=generator)
    return tops, lefts


def crop(images: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor,
         input_size: tuple[int, int] = INPUT_SIZE) -> torch.Tensor:
    """Crop each image of a B×C×H×W batch at its own corner, in one indexing operation.

    A windowed view shows every h×w window without copying; indexing copies only the chosen
    ones (numpy's indexing on CPU is ~10× faster than torch's here; torch's runs on the GPU).
    """
    h, w = input_size
    if images.device.type == "cpu":
        windows = np.lib.stride_tricks.sliding_window_view(images.numpy(), (h, w), axis=(2, 3))
        return torch.from_numpy(windows[np.arange(len(images)), :, tops.numpy(), lefts.numpy()])
    windows = images.unfold(2, h, 1).unfold(3, w, 1)  # B×C×(H-h+1)×(W-w+1)×h×w
    return windows[torch.arange(len(images), device=images.device), :, tops.to(images.device),
                   lefts.to(images.device)]


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a background thread, keeping up to ``depth`` ready.

    The order is unchanged, so results equal the sequential path; errors re-raise here.
    Leaving the loop early stops the thread.
    """
    if depth <= 0:
        yield from items
        return
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put((done, None))
        except BaseException as exc:  # handed to the consumer
            ready.put((done, exc))
        finally:
            getattr(items, "close", lambda: None)()  # a generator's cleanup runs in its own thread

    thread = threading.Thread(target=work, name="sig-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass


def set_digest(sigset: SignatureSet) -> str:
    """A quick identity of a set for config.json: labels, shape and a sample of images (not all of x)."""
    digest = hashlib.sha256()
    digest.update(repr((sigset.x.shape, str(sigset.x.dtype))).encode())
    digest.update(np.ascontiguousarray(sigset.y, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(sigset.yforg, dtype=np.int64).tobytes())
    sample = np.unique(np.linspace(0, len(sigset) - 1, num=min(64, len(sigset))).astype(np.int64))
    reader = _RowReader(sigset.x)
    try:
        digest.update(reader.read(sample).tobytes())
    finally:
        reader.close()
    return digest.hexdigest()[:16]


class _RowReader:
    """Reads rows of ``x``; for a memory-mapped ``x``, with ``preadv`` from the file behind it.

    Pages of a memory map that were read count as this process's memory (and the kernel may
    map large neighbouring blocks on each access), so indexing the map would grow with the
    set. A read into our own buffer goes through the page cache, which is not process
    memory: resident memory stays flat however large the set. Runs of consecutive rows are
    read in one call. Any other array (or a platform without ``preadv``) is indexed.
    """

    def __init__(self, x: np.ndarray):
        self.x = x
        self.row_bytes = int(np.prod(x.shape[1:])) * x.dtype.itemsize
        self.fd: int | None = None
        location = _file_location(x)
        if location is not None:
            self.fd = os.open(location[0], os.O_RDONLY)
            self.offset = location[1]
            if not np.array_equal(self._pread(np.array([0])), x[:1]):  # a layout we misread: index instead
                self.close()
            _release(x)  # the check mapped row 0 (and, with large folios, its neighbours)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (ascending) as one in-memory array."""
        return np.ascontiguousarray(self.x[rows]) if self.fd is None else self._pread(rows)

    def _pread(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), *self.x.shape[1:]), dtype=self.x.dtype)
        flat = out.reshape(len(rows), -1).view(np.uint8)
        starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)
        for first, end in zip(starts, [*starts[1:], len(rows)]):
            buffer, position = memoryview(flat[first:end]).cast("B"), self.offset + int(rows[first]) * self.row_bytes
            while len(buffer):
                count = os.preadv(self.fd, [buffer], position)
                if count <= 0:
                    raise InputError(f"{getattr(self.x, 'filename', 'x.npy')} is shorter than its header says",
                                     "the file is truncated; preprocess the set again")
                buffer, position = buffer[count:], position + count
        return out

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _file_location(x: np.ndarray) -> tuple[str, int] | None:
    """File and byte offset of ``x[0]`` for a C-ordered memory map (or a slice of one) of rows."""
    base_map, filename = getattr(x, "_mmap", None), getattr(x, "filename", None)
    if base_map is None or filename is None or not hasattr(os, "preadv") or not x.flags.c_contiguous or not len(x):
        return None
    map_start = x.offset - x.offset % mmap.ALLOCATIONGRANULARITY  # where numpy's map begins in the file
    map_address = np.frombuffer(base_map, dtype=np.uint8).ctypes.data
    return filename, map_start + (x.ctypes.data - map_address)


def _release(x: np.ndarray) -> None:
    """Unmap the pages of a memory map that were read (they stay in the page cache)."""
    try:
        x._mmap.madvise(mmap.MADV_DONTNEED)
    except (AttributeError, OSError, ValueError):  # no such call on this platform: memory use only
        pass
