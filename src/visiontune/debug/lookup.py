"""How a job's name becomes its record (``.name``, ``.output_dir``, ``.status``, ``.secondary_status``):
:mod:`visiontune.jobs` registers the job store's lookup, so this package never imports the jobs layer.  A light
module (no torch, no numpy): the jobs layer registers into it without loading the debugger's readers."""

from __future__ import annotations

from typing import Callable

from visiontune.registry import Registry

JOB_LOOKUP: Registry[Callable[[str], object]] = Registry("job lookup")
