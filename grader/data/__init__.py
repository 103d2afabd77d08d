"""The datasets the homework loads: found offline, split into subset and private holdout.

`load(name, data_dir)` finds and decodes a dataset; `make_split` draws the student's subset and
the grader's holdout; grader/kernel/datasets.py serves the subset to the notebook's `load_data()`.
"""

from .sources import DATASETS, Dataset, DatasetError, describe, fetch, load, locate
from .split import Split, make_split

__all__ = ["DATASETS", "Dataset", "DatasetError", "Split", "describe", "fetch", "load", "locate",
           "make_split"]
