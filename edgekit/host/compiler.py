"""Run Coral's ``edgetpu_compiler`` and turn its output into a structured report.

The compiler exists only for x86-64 Debian/Ubuntu (Coral's apt repository, package
``edgetpu-compiler``), so it is often missing: :func:`find_compiler` returns None and the caller
decides. Everything here follows the compiler's documented behaviour (v16):
``edgetpu_compiler -s -o OUT [-m N] [-n N] [-t SEC] model.tflite`` writes
``<stem>_edgetpu.tflite`` and ``<stem>_edgetpu.log`` to OUT, prints a summary (sizes, on-chip /
off-chip memory, subgraphs, op counts) and, with ``-s``, the ``Operator  Count  Status`` table.
Failures print ``Compilation failed!`` and exit non-zero.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import time
from pathlib import Path

from edgekit.edgetpu.compiler_report import (  # noqa: F401  (re-exported)
    MAPPED,
    CompileReport,
    parse_output,
    parse_table,
    to_bytes,
)
from edgekit.errors import EdgekitError

COMPILER = "edgetpu_compiler"
INSTALL_HINT = (
    "edgetpu_compiler runs only on x86-64 Debian/Ubuntu: install package edgetpu-compiler from "
    "Coral's apt repository (https://coral.ai/docs/edgetpu/compiler/) or run scripts/setup-host.sh"
)
GRACE_S = 5.0  # the compiler's own -t timer gets this long to fire before we kill it
# Bytes of stdout, and of <stem>_edgetpu.log, edgekit reads. v16 prints a few KB (the -s table
# has one row per op type and status); a broken compiler's gigabytes were read whole (MemoryError).
OUTPUT_LIMIT = 16 * 1024 * 1024


class _Flood(Exception):
    """The compiler wrote more than OUTPUT_LIMIT bytes to ``where``."""

    def __init__(self, where: str):
        super().__init__(where)
        self.where = where

def find_compiler(explicit: str | os.PathLike | None = None) -> Path | None:
    """``explicit`` (must exist and be executable) or ``edgetpu_compiler`` on PATH, else None."""
    if explicit is not None:
        p = Path(explicit)
        # A bare name is looked up on PATH; anything with a slash (./edgetpu_compiler) is a path.
        bare = os.sep not in str(explicit) and (os.altsep is None or os.altsep not in str(explicit))
        found = shutil.which(str(p)) if bare else (str(p) if p.is_file() else None)
        if not found or not os.access(found, os.X_OK):
            raise EdgekitError(f"--compiler {explicit}: not an executable file", INSTALL_HINT)
        return Path(found).absolute()  # it runs with the temporary bundle as working directory
    found = shutil.which(COMPILER)
    return Path(found) if found else None


# What to do when the compiler refuses a model, per command: convert can still write the CPU
# bundle (--no-compile, --segments); `edgekit compile` has neither option.
CONVERT_ADVICE = {
    "not-quantized": "the Edge TPU needs every tensor int8/uint8; pass --no-compile to keep the "
                     "CPU bundle",
    "parse": "this TensorFlow may emit op versions the compiler does not know; try a newer "
             "compiler or an older tensorflow, or pass --no-compile",
    "internal": "try --segments 2, a smaller model, or --no-compile for the CPU bundle",
    "crash": "pass --no-compile to keep the CPU bundle, and report the crash to Coral",
    "other": "pass --no-compile to keep the CPU bundle",
}  # fmt: skip
COMPILE_ADVICE = {
    "not-quantized": "the Edge TPU needs every tensor int8/uint8: make the model with "
                     "`edgekit convert` (full-int8), or run it on the CPU as it is",
    "parse": "this TensorFlow may emit op versions the compiler does not know; try a newer "
             "compiler, or an older tensorflow for the conversion",
    "internal": "try compiling the models one by one, or a smaller model",
    "crash": "try compiling the models one by one, and report the crash to Coral",
    "other": "check the compiler's message; try compiling the models one by one",
}  # fmt: skip


def _failure(stdout: str, returncode: int, model: Path,
             advice: dict[str, str] = CONVERT_ADVICE) -> EdgekitError:  # fmt: skip
    text = stdout
    details = [line[6:].strip() for line in text.splitlines() if line.startswith("ERROR:")]
    detail = f" ({details[0]})" if details else ""
    if "Model not quantized" in text:
        return EdgekitError(
            f"edgetpu_compiler: {model.name}: model not quantized{detail}",
            advice["not-quantized"],
        )
    if "Model could not be parsed" in text:
        return EdgekitError(
            f"edgetpu_compiler: {model.name}: model could not be parsed{detail}", advice["parse"]
        )
    if "Internal compiler error" in text:
        return EdgekitError(
            f"edgetpu_compiler: internal compiler error on {model.name}{detail}",
            advice["internal"],
        )
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode).name
        except ValueError:
            sig = str(-returncode)
        return EdgekitError(f"edgetpu_compiler crashed ({sig}) on {model.name}", advice["crash"])
    last = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "no output")
    return EdgekitError(
        f"edgetpu_compiler failed (exit status {returncode}) on {model.name}: {last}",
        advice["other"],
    )


def run_compiler(cmd: list[str], timeout: float, log_path: Path, model: Path, *, on: str,
                 timeout_hint: str, fix: str,
                 advice: dict[str, str] = CONVERT_ADVICE) -> tuple[str, float]:  # fmt: skip
    """Run ``cmd`` (an edgetpu_compiler call) in its own session: stdout and ``log_path`` read
    up to OUTPUT_LIMIT, the deadline ``timeout`` + GRACE_S enforced on the whole process group,
    Ctrl-C/SIGTERM passed on as a kill. Returns (stdout text, wall seconds) of a successful run;
    anything else is one EdgekitError (``on`` names the model(s) in it, ``model`` the first)."""
    t0 = time.monotonic()
    try:
        # Bytes, not text: a compiler that prints invalid UTF-8 must not crash the decoding.
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
    except OSError as e:
        raise EdgekitError(f"cannot run {cmd[0]}: {e.strerror or e}", INSTALL_HINT) from None
    try:
        raw = _read_bounded(proc, t0 + timeout + GRACE_S, log_path)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise EdgekitError(
            f"edgetpu_compiler timed out after {timeout:g} s{on}", timeout_hint
        ) from None
    except _Flood as e:
        _kill(proc)
        raise EdgekitError(
            f"edgetpu_compiler wrote more than {OUTPUT_LIMIT // 2**20} MiB to {e.where}{on} (a "
            "working one writes a few KB): stopped it",
            fix,
        ) from None
    except BaseException:
        # Ctrl-C / SIGTERM: in its own session the compiler does not get the signal; stop it.
        _kill(proc)
        raise
    stdout = (raw or b"").decode("utf-8", errors="replace")
    if proc.returncode != 0 or "Compilation failed" in stdout:
        raise _failure(stdout, proc.returncode, model, advice)
    return stdout, time.monotonic() - t0


def compile_model(
    compiler: str | os.PathLike,
    model: str | os.PathLike,
    out_dir: str | os.PathLike,
    min_runtime: int | None = None,
    segments: int | None = None,
    timeout: float = 180.0,
) -> CompileReport:
    """Compile ``model`` into ``out_dir``; return the parsed report or raise EdgekitError.

    ``timeout`` (seconds) is passed as ``-t`` and enforced on the process (plus a short grace):
    a hung compiler is killed with its whole process group.
    """
    model, out_dir = Path(model), Path(out_dir)
    cmd = [str(compiler), "-s", "-o", str(out_dir)]
    if min_runtime is not None:
        cmd += ["-m", str(int(min_runtime))]
    if segments is not None and segments > 1:
        cmd += ["-n", str(int(segments))]
    cmd += ["-t", str(max(1, int(round(timeout)))), str(model)]
    log_path = out_dir / f"{model.stem}_edgetpu.log"
    stdout, wall = run_compiler(
        cmd, timeout, log_path, model,
        on=f" on {model.name}",
        timeout_hint="raise --compile-timeout, or pass --no-compile to keep the CPU bundle",
        fix="reinstall the compiler, or pass --no-compile to keep the CPU bundle",
    )  # fmt: skip
    log_text = ""
    if log_path.is_file():
        if log_path.stat().st_size > OUTPUT_LIMIT:
            raise EdgekitError(
                f"edgetpu_compiler wrote more than {OUTPUT_LIMIT // 2**20} MiB to "
                f"{log_path.name} on {model.name} (a working one writes a few KB)",
                "reinstall the compiler, or pass --no-compile to keep the CPU bundle",
            )
        log_text = log_path.read_text(errors="replace")
    try:
        report = parse_output(stdout, log_text)
    except (ValueError, KeyError, IndexError) as e:
        raise EdgekitError(
            f"edgetpu_compiler reported success but its output is not understood ({e})",
            "check the compiler version (edgekit reads v16's output), or pass --no-compile",
        ) from None
    report.command = [Path(cmd[0]).name, *cmd[1:-1], model.name]
    report.wall_s = round(wall, 3)
    out_model = out_dir / f"{model.stem}_edgetpu.tflite"
    if not out_model.is_file() and not (segments and segments > 1):
        raise EdgekitError(
            f"edgetpu_compiler reported success but wrote no {out_model.name}",
            "pass --no-compile to keep the CPU bundle",
        )
    # With -n > 1 the compiler writes <stem>_segment_<i>_of_<n>_edgetpu.tflite files instead.
    for written in [out_model] if out_model.is_file() else sorted(out_dir.glob("*_edgetpu.tflite")):
        check_compiled(written)
    report.output = out_model.name if out_model.is_file() else None
    report.log = log_path.name if log_path.is_file() else None
    report.success = True
    return report


def check_compiled(path: Path) -> None:
    """Refuse to ship what a broken compiler wrote: the file must be a TFLite model that holds
    an ``edgetpu-custom-op`` (what edgetpu_compiler puts the mapped part of the graph in)."""
    from edgekit.tflite import read_model

    try:
        info = read_model(path)
    except EdgekitError as e:
        raise EdgekitError(
            f"edgetpu_compiler reported success but wrote an unreadable {path.name} ({e.message})",
            "reinstall the compiler, or pass --no-compile to keep the CPU bundle",
        ) from None
    if not info.is_edgetpu_compiled:
        raise EdgekitError(
            f"edgetpu_compiler reported success but {path.name} holds no edgetpu-custom-op",
            "reinstall the compiler, or pass --no-compile to keep the CPU bundle",
        )


def _read_bounded(proc: subprocess.Popen, deadline: float, log_path: Path) -> bytes:
    """The compiler's stdout until it exits, at most :data:`OUTPUT_LIMIT` bytes (else
    :class:`_Flood`, also when its log file grows past that); ``deadline`` is a
    ``time.monotonic()`` value (``subprocess.TimeoutExpired`` after it)."""
    out = bytearray()
    fd = proc.stdout.fileno()
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(proc.args, deadline)
            ready = sel.select(min(left, 0.5))
            if _size(log_path) > OUTPUT_LIMIT:
                raise _Flood(log_path.name)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            out += chunk
            if len(out) > OUTPUT_LIMIT:
                raise _Flood("its output")
    proc.stdout.close()
    while proc.poll() is None:  # stdout closed, still running: its log is still watched
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(proc.args, deadline)
        if _size(log_path) > OUTPUT_LIMIT:
            raise _Flood(log_path.name)
        time.sleep(0.05)
    return bytes(out)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _kill(proc: subprocess.Popen) -> None:
    """Kill the compiler's whole process group and reap it (its output is not read: a flood
    would keep coming)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    if proc.stdout is not None:
        proc.stdout.close()
    proc.wait()
