"""Deprecated name: split by job into translation.averaging (average the last N checkpoints),
translation.resume (which checkpoint a resumed run starts from) and translation.training_record
(which data a checkpoint was trained on). Kept importable for code written against the old name.
"""

from .averaging import average_checkpoints, last_checkpoints
from .resume import resume_checkpoint, unreadable_reason
from .training_record import TRAINING_DATA_RECORD, dictionary_hashes, record_training_data, training_dictionaries

__all__ = ["average_checkpoints", "last_checkpoints", "resume_checkpoint", "unreadable_reason",
           "TRAINING_DATA_RECORD", "dictionary_hashes", "record_training_data", "training_dictionaries"]
