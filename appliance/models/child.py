"""Model builds in child processes: the parent's side and the child's.

Builds import torch, Optimum and ONNX tooling (hundreds of MB, seconds to import); the
server process that waits for them must not hold any of it, so every first-start build
runs in a child. The parent takes the build lock (:func:`build_once`), runs the child
into a private directory and relays the child's progress into its
:class:`~appliance.progress.Report`; the child runs one builder and reports through the
pipe it was handed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from appliance.children import child_env, module_command
from appliance.core.logline import setup_logging
from appliance.models.build_cache import build_once, exit_with_parent
from appliance.progress import Report, child_report, log_report, nice_if_asked, run_child


def build_in_child(
    target: Path,
    module: str,
    args: Sequence[str],
    report: Report,
    *,
    is_done: Callable[[Path], bool],
    nice: int = 0,
) -> Path:
    """``target``, built first by ``python -m MODULE *ARGS TMP_DIR`` unless it is there.

    ``nice`` lowers the child's CPU priority: a step that nobody waits for lets the one on
    the critical path have the cores.
    """

    def build(tmp: Path) -> None:
        run_child(module_command(module, *args, str(tmp)), report, nice=nice, env=child_env())

    def waiting() -> None:
        report("another process is building it; waiting for that build")

    return build_once(target, build, is_done=is_done, waiting=waiting)


def child_main(build: Callable[[Path, Report], object], argv: Sequence[str]) -> int:
    """Entry point of a build child: ``argv[-1]`` is the (empty) directory to fill.

    The child ends when its parent does, lowers its priority when asked, logs only
    warnings (its progress goes to the parent) and reports to the parent's pipe, or to
    its own log when run by hand.
    """
    exit_with_parent(os.getppid())
    nice_if_asked()
    setup_logging(logging.WARNING, "%(levelname)s %(name)s: %(message)s")
    out = Path(argv[-1])
    out.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("appliance.build")
    logger.setLevel(logging.INFO)
    build(out, child_report(log_report(logger)))
    return 0
