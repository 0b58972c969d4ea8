"""Is exactly one ONNX Runtime build installed?

``onnxruntime`` (CPU) and ``onnxruntime-gpu`` both install the same ``onnxruntime``
package directory; with both present, whichever was installed last wins file by file
and uninstalling either breaks the other. The project therefore ships them as separate
extras (``appliance[cpu]``, ``appliance[gpu]``) and checks the result at start-up.
"""

from __future__ import annotations

from importlib import metadata

BUILDS = ("onnxruntime", "onnxruntime-gpu")


def installed_builds() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in BUILDS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def onnxruntime_install_problem() -> str | None:
    """A one-line description of a broken ONNX Runtime install, or None when it is sound."""
    found = installed_builds()
    if not found:
        return "ONNX Runtime is not installed: pip install 'appliance[cpu]' (or [gpu] on CUDA hosts)"
    if len(found) > 1:
        return (
            "both onnxruntime and onnxruntime-gpu are installed and overwrite each other: "
            "pip uninstall -y onnxruntime onnxruntime-gpu && pip install 'appliance[gpu]' "
            "(or [cpu])"
        )
    return None
