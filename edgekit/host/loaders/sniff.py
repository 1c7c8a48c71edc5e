"""What a model path holds, decided by its content, never by its suffix.

Users save HDF5 under ``.keras``, ``.model`` or no suffix at all, commit Git LFS pointers in
place of the file, and pass a ``.tflite`` to ``convert``. The first bytes tell:

- HDF5: the 8-byte signature ``\\x89HDF\\r\\n\\x1a\\n`` at offset 0, 512, 1024, 2048... (the HDF5
  spec allows a user block before the superblock; h5py.is_hdf5 searches the same offsets);
- zip: ``PK\\x03\\x04`` (a Keras 3 ``.keras`` archive, or Keras 2.13+'s v3 format);
- TFLite: the flatbuffer file identifier ``TFL3`` at offset 4;
- Git LFS pointer: a small text file starting ``version https://git-lfs.github.com/spec/v1``;
- a SavedModel: a directory holding ``saved_model.pb`` (``keras_metadata.pb`` when tf.keras 2
  wrote it with ``model.save(dir)``).
"""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.safeio import require_regular

MODEL_HINT = "pass a Keras .h5 or .keras file, or a SavedModel directory"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
LFS_PREFIX = b"version https://git-lfs.github.com/spec/"


def sniff(path: Path) -> str:
    """``"hdf5"``, ``"zip"`` or ``"savedmodel"`` for what a loader can try; raises
    EdgekitError naming what ``path`` is otherwise (missing, LFS pointer, TFLite, text, empty,
    unknown bytes)."""
    if not path.exists():
        raise EdgekitError(f"{path}: no such file or directory", MODEL_HINT)
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "savedmodel"
        raise EdgekitError(f"{path}: directory is not a SavedModel (no saved_model.pb)", MODEL_HINT)
    require_regular(path, "model")  # a FIFO would block h5py / zipfile forever
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            if _hdf5_at(f, head):
                return "hdf5"
    except OSError as e:
        raise EdgekitError(f"{path}: cannot read the model file ({e.strerror or e})") from None
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if not head:
        raise EdgekitError(f"{path}: empty file", MODEL_HINT)
    if head.startswith(LFS_PREFIX):
        size = _lfs_size(head)
        raise EdgekitError(
            f"{path}: this is a Git LFS pointer ({len(head)} bytes), not the model"
            + (f" ({size} bytes on the LFS server)" if size else ""),
            "run `git lfs pull` in the repository (or download the file itself), then convert",
        )
    if head[4:8] == b"TFL3":
        raise EdgekitError(
            f"{path}: already a TensorFlow Lite model; convert takes the Keras model it came from",
            "run it as it is (edgekit classify/bench), compile an int8 one for the Edge TPU "
            "with `edgekit compile`, or convert the .h5/.keras file",
        )
    if _is_text(head):
        first = head.decode("utf-8", "replace").strip().splitlines()[0] if head.strip() else ""
        raise EdgekitError(
            f"{path}: a text file, not a Keras model (starts {first[:60]!r})", MODEL_HINT
        )
    raise EdgekitError(
        f"{path}: not a Keras model (neither HDF5 nor a .keras zip archive)", MODEL_HINT
    )


def _hdf5_at(f, head: bytes) -> bool:
    if head.startswith(HDF5_SIGNATURE):
        return True
    offset = 512
    while True:  # user-block sizes: 512, 1024, 2048, ... (powers of two)
        f.seek(offset)
        chunk = f.read(8)
        if len(chunk) < 8:
            return False
        if chunk == HDF5_SIGNATURE:
            return True
        offset *= 2


def _lfs_size(head: bytes) -> str:
    for line in head.decode("utf-8", "replace").splitlines():
        if line.startswith("size "):
            return line[5:].strip()
    return ""


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head
