"""Parse-robust multiple-choice benchmarks: tasks (ARC, OpenBookQA, TruthfulQA), scoring modes, runs, reports.

A run asks the model under a constraint (or by log-likelihood), so no answer is ever unparseable;
only the ``freeform`` mode, kept to measure what free text loses, can fail to parse.
"""

from benchmarks.tasks import TASKS, DataError, MCQuestion, load_task

__all__ = ["TASKS", "DataError", "MCQuestion", "load_task"]
