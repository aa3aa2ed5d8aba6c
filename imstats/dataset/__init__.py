"""Dataset readers. Importing this package registers every reader module.

``get_reader(name, root=None, **options)`` builds one; see :mod:`imstats.dataset.base`.
``readers_for(path)`` names the readers whose layout a path looks like
(:mod:`imstats.dataset.sniff`).
"""

from imstats.dataset.base import (
    READER_MODULES,
    DatasetNotFoundError,
    DuplicateIdError,
    ExampleRef,
    ImageReadError,
    NoExamplesError,
    Reader,
    _load_all,
    available_readers,
    get_reader,
    reader_from_spec,
    register_reader,
    text_id,
    text_id_bytes,
)
from imstats.dataset.sniff import no_examples_message, readers_for

_load_all()  # registers every reader of base.READER_MODULES

__all__ = [
    "READER_MODULES",
    "DatasetNotFoundError",
    "DuplicateIdError",
    "ExampleRef",
    "ImageReadError",
    "NoExamplesError",
    "Reader",
    "available_readers",
    "get_reader",
    "no_examples_message",
    "reader_from_spec",
    "readers_for",
    "register_reader",
    "text_id",
    "text_id_bytes",
]
