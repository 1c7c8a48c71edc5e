"""What a probe child's end means: :class:`Verdict` (status, the stage reached, the library's
facts, the fix) diagnosed from its exit code (a signal: negative), its JSON lines on stdout
(one per stage of :mod:`edgekit.backends.probe_child`) and its stderr.
"""

from __future__ import annotations

import contextlib
import json
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

from edgekit.backends.edgetpu import EdgeTpuError

CACHEABLE = ("ok", "crash")
STACK_FIX = (
    "install the libedgetpu built for this interpreter's TensorFlow version: `edgekit stack` "
    "names the pair and scripts/setup-pi.sh installs it; `edgekit doctor` checks it"
)
USB_FIX = "unplug and replug the Coral (USB 3 port, powered hub, short cable); run `edgekit doctor`"


@dataclass(frozen=True)
class Verdict:
    """How a libedgetpu + interpreter pair fared. ``status``: ok | missing | no-device | crash
    (SIGSEGV) | usb-error (SIGABRT with "USB transfer error 5") | abort | timeout | error.
    ``stage`` is the last stage the child reached (library, delegate, interpreter, allocate,
    invoke, done); ``runtime`` the Edge TPU runtime version edgetpu_version() reported."""

    status: str
    library: str | None
    detail: str
    fix: str = ""
    stage: str | None = None
    version: str | None = None
    runtime: int | None = None
    interpreter: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def error(self) -> EdgeTpuError:
        return EdgeTpuError(self.detail, self.fix or None)

    def to_dict(self) -> dict:
        return asdict(self)


def _text(b: bytes | str | None) -> str:
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")


def _lines(out: bytes | str | None) -> list[dict]:
    got = []
    for ln in _text(out).splitlines():
        with contextlib.suppress(ValueError):
            d = json.loads(ln)
            if isinstance(d, dict):
                got.append(d)
    return got


def _diagnose(
    path: Path, rc: int | None, lines: list[dict], stderr: str, timeout: float
) -> Verdict:
    facts = next((d for d in lines if d.get("done") and d.get("stage") == "library"), {})
    interp = next((d["interpreter"] for d in lines if "interpreter" in d), None)
    stage = lines[-1].get("stage") if lines else None
    base = dict(
        library=str(path),
        stage=stage,
        version=facts.get("version"),
        runtime=facts.get("runtime"),
        interpreter=interp,
    )
    where = {
        "library": "loading it",
        "delegate": "creating its delegate",
        "interpreter": "applying its delegate to the model",
        "allocate": "allocating the model",
        "invoke": "running the model",
    }.get(stage or "", "starting")
    who = f"libedgetpu {path}" + (f" in {interp}" if interp else "")
    if rc == 0:
        return Verdict("ok", detail=f"{who}: loads, allocates and invokes a compiled model", **base)
    if rc is None:
        return Verdict(
            "timeout",
            detail=f"{who} did not answer within {timeout:g} s (stuck {where})",
            fix=USB_FIX + "; if it persists, reboot",
            **base,
        )
    if rc == -signal.SIGSEGV:
        if stage in ("library", "delegate", "interpreter", "allocate"):
            return Verdict(
                "crash",
                detail=f"{who} crashed (SIGSEGV) {where}: the library "
                "was built for another TensorFlow version than this interpreter",
                fix=STACK_FIX,
                **base,
            )
        return Verdict("crash", detail=f"{who} crashed (SIGSEGV) {where}", fix=USB_FIX, **base)
    if rc == -signal.SIGABRT:
        if "USB transfer error 5" in stderr:
            return Verdict(
                "usb-error",
                detail=f"{who} aborted with 'USB transfer error 5' "
                f"{where}: another process opened the same Edge TPU",
                fix="stop the other process using it (`edgekit doctor` lists it) or "
                "give each process its own Coral (--device usb:N)",
                **base,
            )
        last = next((ln for ln in reversed(stderr.splitlines()) if ln.strip()), "")
        return Verdict(
            "abort",
            detail=f"{who} aborted (SIGABRT) {where}" + (f": {last.strip()[:200]}" if last else ""),
            fix=USB_FIX,
            **base,
        )
    if rc < 0:
        name = signal.Signals(-rc).name if -rc in signal.valid_signals() else str(-rc)
        return Verdict("crash", detail=f"{who} was killed by {name} {where}", fix=USB_FIX, **base)
    err = next((d for d in reversed(lines) if "error" in d), None)
    first = (err["error"].splitlines() or [""])[0] if err else _last_line(stderr)
    if err and "Failed to load delegate" in err["error"]:
        return Verdict(
            "no-device",
            detail=f"libedgetpu could not open the Edge TPU ({first})",
            fix="is it plugged in, and not used by another process? check "
            "permissions (plugdev group, udev rule): run `edgekit doctor`",
            **base,
        )
    if err and err.get("stage") == "library":
        return Verdict("missing", detail=f"cannot load {path} ({first})", fix=STACK_FIX, **base)
    return Verdict("error", detail=f"{who} failed {where}: {first}", fix=USB_FIX, **base)


def _last_line(text: str) -> str:
    return next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "no output")
