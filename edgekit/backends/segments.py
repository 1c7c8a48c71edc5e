"""Compiled segments: a model ``edgetpu_compiler --num_segments N`` split over N Edge TPUs.

The compiler writes ``BASE_segment_K_of_N_edgetpu.tflite`` (K = 0..N-1); segment K+1's inputs
are segment K's outputs, by tensor name (Coral's pipelining API chains them the same way), and
any input of a later segment may come from any earlier one. Given any one of the files,
:func:`segment_set` finds the whole set (a missing file is one line naming it).

:func:`open_segments` opens the set as ONE interpreter-like object (:class:`ChainInterpreter`:
input of the first segment, outputs of the last, ``invoke`` runs them in order and copies each
intermediate tensor to the segment that reads it), wrapped in an ordinary
:class:`~edgekit.backends.runner.Runner`, so every task model runs it unchanged:

- Edge TPUs: segment K on the Kth attached Edge TPU (or the Kth of a ``usb:0,usb:1`` list),
  each under its own device lock, in this one process (libedgetpu serves several devices to
  one process), as a :class:`~edgekit.backends.segment_pipeline.PipelineInterpreter`: one
  frame at a time it is the chain; callers that run several frames at once (serve's worker,
  classify/detect over many images, bench) get segment K on frame n while segment K-1 runs
  frame n+1 (``edgekit.backends.segment_pipeline``). Fewer Edge TPUs than segments (at least
  one): segment K on device K mod M (this process's device lock is re-entrant; libedgetpu
  serves several models on one device, swapping their parameters in), chained one frame at a
  time, said in one notice.
- CPU: the uncompiled whole model ``BASE.tflite`` beside the segments (the CPU twin), else the
  segments in sequence when none contains an ``edgetpu-custom-op`` (segments split from an
  uncompiled model); compiled segments without a twin are refused in one line: the CPU
  interpreter cannot run the Edge TPU's custom op.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekit.errors import EdgekitError

SEGMENT_RE = re.compile(r"^(?P<base>.+)_segment_(?P<k>\d+)_of_(?P<n>\d+)_edgetpu\.tflite$")


def segment_set(path: str | Path) -> list[Path] | None:
    """All N segment files of the set ``path`` belongs to, in order; None when ``path`` is not
    a segment file. Raises EdgekitError when a segment of the set is missing."""
    p = Path(path)
    m = SEGMENT_RE.match(p.name)
    if m is None or p.is_dir():
        return None
    base, n = m.group("base"), int(m.group("n"))
    if n < 1 or int(m.group("k")) >= n:
        raise EdgekitError(f"{p.name}: segment {m.group('k')} of {n} is not a valid segment name")
    files = [p.with_name(f"{base}_segment_{k}_of_{n}_edgetpu.tflite") for k in range(n)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise EdgekitError(f"{p.name} is segment {m.group('k')} of {n}, but {', '.join(missing)} "
                           f"{'is' if len(missing) == 1 else 'are'} missing",
                           "keep every segment edgetpu_compiler wrote in one folder")  # fmt: skip
    return files


def cpu_twin(files: list[Path]) -> Path | None:
    """The uncompiled whole model beside the segments (``BASE.tflite``), if there."""
    m = SEGMENT_RE.match(files[0].name)
    twin = files[0].with_name(f"{m.group('base')}.tflite") if m else None
    return twin if twin is not None and twin.is_file() else None


def compiled(files: list[Path]) -> bool:
    """Whether any segment holds an edgetpu-custom-op (what the CPU interpreter cannot run)."""
    from edgekit.tflite import read_model

    return any(read_model(f).is_edgetpu_compiled for f in files)


def segment_links(interpreters: list[Any], names: list[str]) -> list[list[tuple[int, int, int]]]:
    """Per segment K, how its inputs are fed: (its input index, source segment, that segment's
    output index), matched by tensor name (the compiler gives the cut tensor one name in both
    segments); [] for segment 0. A name no earlier segment produces is one EdgekitError."""
    links: list[list[tuple[int, int, int]]] = [[]]
    produced: dict[str, tuple[int, int]] = {}
    for k, interp in enumerate(interpreters):
        if k > 0:
            mine = []
            for d in interp.get_input_details():
                src = produced.get(d["name"])
                if src is None:
                    raise EdgekitError(f"{names[k]}: its input {d['name']!r} is no output of "
                                       "the segments before it",
                                       "use the segment files of one compilation")  # fmt: skip
                mine.append((d["index"], *src))
            links.append(mine)
        for d in interp.get_output_details():
            produced[d["name"]] = (k, d["index"])
    return links


class ChainInterpreter:
    """Several allocated interpreters run as one (see module docstring): the tf.lite
    Interpreter calls edgekit uses (details, tensor, set_tensor, get_tensor, invoke)."""

    def __init__(self, interpreters: list[Any], names: list[str]):
        self.parts = interpreters
        self._links = segment_links(interpreters, names)

    def get_input_details(self) -> list[dict]:
        return self.parts[0].get_input_details()

    def get_output_details(self) -> list[dict]:
        return self.parts[-1].get_output_details()

    def allocate_tensors(self) -> None:
        pass  # each part is allocated when opened

    def tensor(self, index: int) -> Callable[[], np.ndarray]:
        return self.parts[0].tensor(index)

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        self.parts[0].set_tensor(index, value)

    def get_tensor(self, index: int) -> np.ndarray:
        return self.parts[-1].get_tensor(index)

    def invoke(self) -> None:
        self.parts[0].invoke()
        for part, links in zip(self.parts[1:], self._links[1:]):
            for dst, k, src in links:
                part.set_tensor(dst, self.parts[k].get_tensor(src))
            part.invoke()


class _Release:
    """The chain's 'device lock': closing the Runner closes every segment's runner."""

    def __init__(self, runners: list[Any]):
        self.runners = runners

    def release(self) -> None:
        for r in self.runners:
            r.close()


def open_segments(files: list[Path], device: str, threads: int | None,
                  backends: dict, warn: Callable[[str], None]):  # fmt: skip
    """A Runner over the segment set ``files`` (see module docstring). ``backends`` is the
    registry (``"cpu"``, ``"edgetpu"`` factories)."""
    from edgekit.backends.runner import Runner

    n, name = len(files), files[0].name
    devices = _edge_tpus(device, n, backends)
    if devices:
        m = len(devices)
        if m < n:  # segment K on device K mod M (this process's device lock is re-entrant)
            warn(f"{n} segments on {m} Edge TPU{'s' if m > 1 else ''}: chained on "
                 f"{','.join(devices)}, one frame at a time (the pipeline needs {n})")  # fmt: skip
        runners = []
        try:
            for k, f in enumerate(files):
                runners.append(backends["edgetpu"](str(f), devices[k % m], threads))
        except BaseException:
            for r in runners:  # the devices opened so far are released (their locks too)
                r.close()
            raise
        names = "+".join(dict.fromkeys(r.device for r in runners))
        return _chain(runners, files, names, "edgetpu", pipelined=m >= n)
    twin = cpu_twin(files)
    if twin is None and compiled(files):  # refused before any "running on the CPU" notice
        raise EdgekitError(
            f"{name}: compiled segments (edgetpu-custom-op) cannot run on the CPU interpreter"
            + ("" if device == "cpu" else ", and no Edge TPU is attached"),
            f"attach an Edge TPU ({n} to pipeline them), or put the uncompiled model "
            f"{SEGMENT_RE.match(name).group('base')}.tflite beside the segments",
        )
    if device != "cpu":
        warn(f"no Edge TPU for the {n} segments: running on the CPU (emulation)")
    if twin is not None:
        warn(f"running the CPU twin {twin.name} of the {n} segments (emulation)")
        r = backends["cpu"](str(twin), "cpu", threads)
        return Runner(r.interpreter, device="cpu", backend="cpu", provider=r.provider,
                      model_path=str(twin), threads=r.threads, lock=_Release([r]))  # fmt: skip
    return _chain([backends["cpu"](str(f), "cpu", threads) for f in files], files, "cpu", "cpu")


def _chain(runners: list, files: list[Path], device: str, backend: str,
           pipelined: bool = False):  # fmt: skip
    from edgekit.backends.runner import Runner
    from edgekit.backends.segment_pipeline import PipelineInterpreter

    try:
        interps, names = [r.interpreter for r in runners], [f.name for f in files]
        if pipelined:
            chain = PipelineInterpreter(interps, names, [r.device for r in runners])
        else:
            chain = ChainInterpreter(interps, names)
    except BaseException:
        for r in runners:
            r.close()
        raise
    return Runner(chain, device=device, backend=backend, provider=runners[0].provider,
                  model_path=str(files[-1]), threads=runners[0].threads,
                  lock=_Release(runners))  # fmt: skip


def _edge_tpus(device: str, n: int, backends: dict) -> list[str] | None:
    """The devices the N segments go to, or None for the CPU. ``auto``: the first N attached
    (fewer: those, the segments chained over them; none: the CPU); ``usb``/``pci``/``usb:*``:
    the same of that kind (none: an error); a list ``usb:0,usb:1``: those, one per segment."""
    device = (device or "auto").strip().lower()
    if device == "cpu":
        return None
    tpu = backends.get("edgetpu")
    attached = tpu.list_devices() if tpu is not None and hasattr(tpu, "list_devices") else []
    if "," in device:
        from edgekit.backends.devices import parse_device

        names = [d.strip() for d in device.split(",")]
        for name in names:
            parse_device(name)  # "" or "cpu" in a list: one line saying what is valid
        if len(names) != n:
            raise EdgekitError(f"{n} segments need {n} devices; {device!r} names {len(names)}",
                               f"list {n} Edge TPUs, or use auto")  # fmt: skip
        return names
    kind = device.split(":")[0] if device not in ("auto", "*", ":*") else None
    pool = [d.name for d in attached if kind is None or d.type == kind]
    if pool:
        return pool[:n]  # fewer than n: the segments are chained over them
    if device == "auto":
        return None
    raise EdgekitError(f"{n} segments need an Edge TPU ({n} to pipeline them); attached: 0",
                       "attach an Edge TPU, or run the CPU twin with --device cpu")  # fmt: skip
