"""Per-task data for the commands: what `fit` loads and splits, the estimator it builds,
what a run records about its data, and how `evaluate`, `predict` and `align` rebuild
that data (or read new inputs) and refuse data that does not fit the run.

    task = TASKS["table"]
    split = task.load_fit(args, settings)        # train / test (and validation) parts
    records = task.load_run(run, args, "test")   # the run's own test split, rebuilt

One module per task (series, sequence, table) over the shared base (base.py); the
commands never branch on the task. The task modules import only base, never each other.
"""

from __future__ import annotations

from xmodal.cli.tasks.base import (
    DEFAULT_TEST_SIZE,
    Records,
    Split,
    Task,
    add_run_data_flags,
    existing_path,
)
from xmodal.cli.tasks.sequence import SequenceTask
from xmodal.cli.tasks.series import SeriesTask
from xmodal.cli.tasks.table import TableTask

TASKS: dict[str, Task] = {task.name: task for task in (SeriesTask(), SequenceTask(), TableTask())}

__all__ = ["DEFAULT_TEST_SIZE", "TASKS", "Records", "SequenceTask", "SeriesTask", "Split", "TableTask", "Task",
           "add_run_data_flags", "existing_path"]
