"""Data sets, expression generators and readers.

Every source yields the same record dict, which the evaluator and the trainer consume:
``{"id": str, "image": H×W×3 uint8, "mask": H×W bool, "expression": str, "ambiguous": bool,
"followup": str|None, "followup_mask": H×W bool|None, "kind": str}`` (readers add ``image_path``).
"""

from rrsis_engine.data.jsonl import write_jsonl
from rrsis_engine.data.readers import (
    load_records,
    read_jsonl,
    read_refsegrs,
    read_risbench,
    read_rrsisd,
)
from rrsis_engine.data.synthetic import SyntheticReferringDataset, generate_sample

__all__ = [
    "SyntheticReferringDataset",
    "generate_sample",
    "load_records",
    "read_jsonl",
    "read_refsegrs",
    "read_risbench",
    "read_rrsisd",
    "write_jsonl",
]
