"""The SQL store of tracks, catalogue label sets, feedback events, quarantined rows and predictions.

:class:`Store` is the one entry point: ``Store.open(path_or_url)`` opens a SQLite file or
a PostgreSQL database and migrates it to the current schema. Inside: the engine and the
bulk writes and reads (:mod:`.engine`), the tables (:mod:`.schema`), their Alembic
migrations (:mod:`.migrate`, ``migrations/``), the table methods (:mod:`.store`,
:mod:`.catalogue`, :mod:`.predictions`, :mod:`.summaries`) and the conversion of values
to and from the database (:mod:`.dbvalues`). No torch here.
"""

from encore.store.schema import EVENT_KINDS, PREDICTION_KINDS, QuarantinedRow
from encore.store.store import Store

__all__ = ["EVENT_KINDS", "PREDICTION_KINDS", "QuarantinedRow", "Store"]
