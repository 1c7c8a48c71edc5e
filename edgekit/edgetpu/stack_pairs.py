"""What the parts of an installed stack are: the TF version a libedgetpu package or an
interpreter was built from, whether the two pair (match, crash, untested), and the Edge TPU
runtime a compiled model needs. Pure functions on version strings (evidence in docs/DESIGN.md,
"libedgetpu and interpreter stacks").
"""

from __future__ import annotations

import re


def libedgetpu_tf(package_version: str) -> str | None:
    """TF version a libedgetpu package was built against, from its Debian version:
    "16.0tf2.17.1-1" -> "2.17.1"; Google's "16.0" (any 16.0 without "tf") -> "2.5.0"."""
    m = re.search(r"tf(\d+\.\d+(?:\.\d+)?)", package_version.lower())
    if m:
        return m.group(1)
    return "2.5.0" if package_version.startswith(("16.0", "15.0", "14.")) else None


def interpreter_tf(module: str, version: str) -> str | None:
    """TF version an interpreter package was built from (ai-edge-litert: TF master snapshots)."""
    if module in ("tflite_runtime", "tensorflow"):
        return version.split("+")[0].removesuffix(".post1") if version else None
    if module == "ai_edge_litert":
        nums = tuple(int(x) for x in re.findall(r"\d+", version)[:3])
        if nums >= (2, 1, 3):
            return "2.22-dev"
        if nums >= (2, 0, 0):
            return "2.21-dev"
    return None


def pair_status(lib_tf: str | None, interp_tf: str | None) -> tuple[str, str]:
    """("match" | "crash" | "untested", why) for a libedgetpu TF base and an interpreter TF base."""
    if not lib_tf or not interp_tf:
        return "untested", "the TF version of one side is unknown"

    def minor(v: str) -> tuple[int, int]:
        a, b = (re.findall(r"\d+", v) + ["0", "0"])[:2]
        return int(a), int(b)

    if minor(lib_tf) == minor(interp_tf) and "dev" not in interp_tf:
        return "match", f"both TF {lib_tf}"
    if minor(lib_tf) <= (2, 5) and minor(interp_tf) >= (2, 12):
        return "crash", (
            f"Google's libedgetpu (TF {lib_tf}) segfaults in interpreters built from "
            f"TF >= 2.12 (this one: TF {interp_tf})"
        )
    return "untested", f"libedgetpu TF {lib_tf} with an interpreter of TF {interp_tf}"


def required_runtime(compiler_version: str | None, min_runtime: int | None = None) -> int | None:
    """Edge TPU runtime a compiled model needs: the ``-m`` value if given, else the compiler's
    default (edgetpu_compiler 16 -> 14, 15 -> 13, 14 -> 12)."""
    if min_runtime is not None:
        return int(min_runtime)
    m = re.match(r"\D*(\d+)", compiler_version or "")
    return {16: 14, 15: 13, 14: 12}.get(int(m.group(1))) if m else None
