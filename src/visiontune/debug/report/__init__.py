"""``visiontune report JOB``: one self-contained HTML file per training job, and a one-screen summary.

The report holds the training summary, train vs. validation loss and accuracy curves, every rule's
result with its evidence (the steps and values that triggered it), an explanation and a recommendation,
the system-usage timelines, the step-time breakdown, the profiler rules' findings, the confusion matrix
with the most-confused class pairs, and every warning (tensors a save config left with too few points, a
regex that matched nothing, a damaged store).

- :mod:`.data` reads what the report shows (through the public Trial API) as plain data;
- :mod:`.charts` draws it with matplotlib into inline ``<svg>``;
- :mod:`.render` lays it out with the Jinja2 templates in ``templates/`` (autoescaped) and writes the file,
  which loads nothing from anywhere and runs no scripts (no fonts, images or code from outside it);
- :mod:`.summary` prints it as one screen of text.
"""

from visiontune.debug.report.data import REPORT_FILE, JobData, few_points, job_status, load
from visiontune.debug.report.render import build_report, default_path, render
from visiontune.debug.report.summary import terminal_summary

__all__ = [
    "REPORT_FILE",
    "JobData",
    "build_report",
    "default_path",
    "few_points",
    "job_status",
    "load",
    "render",
    "terminal_summary",
]
