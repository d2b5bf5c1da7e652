"""Session store: every turn and accepted mask of the refinement sessions, as training data.

See :mod:`rrsis_engine.store.api` for the API and docs/store.md for the schema.
"""

from rrsis_engine.errors import StoreError
from rrsis_engine.store.api import AnnotationRecord, Store, TurnRecord, open_store
from rrsis_engine.store.logger import LoggerStatus, SessionLogger, StoreWarning

__all__ = [
    "open_store",
    "Store",
    "SessionLogger",
    "LoggerStatus",
    "StoreWarning",
    "StoreError",
    "AnnotationRecord",
    "TurnRecord",
]
