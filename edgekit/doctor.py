"""`edgekit doctor`: the checks a user debugging a Coral on a Pi needs, each ok / warn / fail with
the fix. Every file path is read relative to ``root`` (tests build fake sysfs/dev/etc trees);
nothing here loads libedgetpu, opens a device or imports TensorFlow. The checks are
:mod:`~.doctor_software` and :mod:`~.doctor_system` (the Edge TPU's own
:mod:`edgekit.edgetpu.checks`); :mod:`~.doctor_check` the finding and the report. This module
runs them in order, and the probe under the device's lock.
"""

from __future__ import annotations

import importlib
import os
import platform
from pathlib import Path
from typing import Callable

from edgekit.backends.devices import list_edge_tpus
from edgekit.backends.providers import installed_providers
from edgekit.doctor_check import FAIL, OK, WARN, Check, report  # noqa: F401 - their import path
from edgekit.doctor_software import (  # noqa: F401 - the checks' import path
    APT_FIX,
    LIB_DIRS,
    _dpkg_installed,
    check_compiler,
    check_interpreter,
    check_libedgetpu,
    check_pycoral,
    check_python,
)
from edgekit.doctor_system import (  # noqa: F401 - the checks' import path
    _groups,
    check_cameras,
    check_devices,
    check_link_health,
    check_plugdev,
    check_udev,
)


def run_checks(
    root: str | os.PathLike = "/",
    *,
    user: str | None = None,
    uid: int | None = None,
    gids: list[int] | None = None,
    machine: str | None = None,
    path: str | None = None,
    import_module: Callable = importlib.import_module,
    providers: dict[str, str | None] | None = None,
    probe: bool = False,
    library: str | None = None,
    device: str | None = None,
    model: str | None = None,
    timeout: float = 30.0,
) -> list[Check]:
    """All checks in order. Arguments default to this process and machine; tests pass fakes.

    ``probe``: also load libedgetpu in a child process and run a tiny compiled model on the
    Edge TPU (``device``, default the first free one), with ``timeout`` seconds; ``library``
    overrides which libedgetpu; ``model`` is a bundle or compiled model whose required Edge TPU
    runtime is compared with the library's before anything loads it."""
    root = Path(root)
    if uid is None:
        uid = os.getuid() if hasattr(os, "getuid") else 1000
    if user is None:
        import getpass

        user = getpass.getuser()
    gids = gids if gids is not None else (os.getgroups() if hasattr(os, "getgroups") else [])
    from edgekit.edgetpu import checks as tpu

    found = providers if providers is not None else installed_providers()
    devices = list_edge_tpus(root)
    per_device, free = [], []
    for d in devices or []:
        per_device.append(tpu.check_node(root, d, uid, gids))
        held, is_free = tpu.check_holders(root, d)
        per_device.append(held)
        if is_free:
            free.append(d)
    checks = [
        check_python(),
        check_interpreter(found),
        check_pycoral(import_module),
        check_libedgetpu(root),
        tpu.check_pair(root, found),
        *check_devices(root),
        *per_device,
        *check_link_health(root),
        check_plugdev(root, user, uid, gids),
        check_udev(root, uid),
        check_cameras(root, import_module),
        check_compiler(machine or platform.machine(), path),
    ]
    if probe:
        checks += _probe_checks(root, tpu, devices, free, library, device, model, timeout)
    if model and not any(c.name == "model runtime" for c in checks):
        checks.append(_model_not_compared(model, probe))
    return checks


def _model_not_compared(model: str, probed: bool) -> Check:
    """``--model`` whose runtime need could not be compared (--no-probe, no libedgetpu to read,
    nothing recorded): said, where doctor said nothing about the model at all."""
    from edgekit.backends.probe import required_runtime_of

    need = required_runtime_of(model)
    if need is None:
        return Check("model runtime", WARN,
                     f"{model}: no Edge TPU runtime requirement recorded (not a bundle compiled "
                     "by edgekit convert or edgekit compile)",
                     "pass a compiled bundle")  # fmt: skip
    if not probed:
        why, fix = "--no-probe", "run doctor --model again without --no-probe"
    else:
        why = "libedgetpu's runtime version could not be read"
        fix = "fix the libedgetpu check above (`edgekit stack` names the one to install)"
    return Check("model runtime", WARN,
                 f"the model needs Edge TPU runtime {need}; not compared ({why})", fix)


def _probe_checks(root, tpu, devices, free, library, device, model, timeout) -> list[Check]:
    need = None
    if model:
        from edgekit.backends.probe import required_runtime_of

        need = required_runtime_of(model)
    lib = tpu.probe_library(root, library)
    if devices is not None and not devices:
        # No device to run a model on: still load the library (in a child) for its version.
        out = tpu.check_probe(lib, None, timeout, need, library_only=True) if lib else []
        return out + [Check("probe", WARN, "skipped: no Edge TPU attached to run a model on",
                            "plug the Coral in and run doctor again")]  # fmt: skip
    if devices and not free:
        return [Check("probe", WARN, "skipped: every Edge TPU is in use (see above)",
                      "stop the process using it, then run doctor again")]  # fmt: skip
    target = device or (free[0].name if free else None)
    # The probe opens the device: hold its lock meanwhile, so that no edgekit process opens it
    # at the same moment (one of the two would abort).
    from edgekit.backends import devicelock
    from edgekit.backends.devices import select_device
    from edgekit.errors import EdgekitError

    chosen = select_device(devices, target) if devices else None
    try:
        lock = devicelock.acquire(chosen.name if chosen else (target or "edgetpu"),
                                  chosen.path if chosen else None)  # fmt: skip
    except EdgekitError as e:
        return [Check("probe", WARN, f"skipped: {e.message}", e.hint or "")]
    try:
        return tpu.check_probe(lib, target, timeout, need)
    finally:
        lock.release()
