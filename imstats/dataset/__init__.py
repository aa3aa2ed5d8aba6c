"""Dataset readers. Importing this package registers every reader module.

``get_reader(name, root=None, **options)`` builds one; see :mod:`imstats.dataset.base`.
"""

from imstats.dataset import cifar, folder, imagenet, kth, memory, mnist, voc  # noqa: F401
from imstats.dataset.base import (
    DatasetNotFoundError,
    DuplicateIdError,
    ExampleRef,
    ImageReadError,
    Reader,
    available_readers,
    get_reader,
    reader_from_spec,
    register_reader,
    text_id,
    text_id_bytes,
)

__all__ = [
    "DatasetNotFoundError",
    "DuplicateIdError",
    "ExampleRef",
    "ImageReadError",
    "Reader",
    "available_readers",
    "get_reader",
    "reader_from_spec",
    "register_reader",
    "text_id",
    "text_id_bytes",
]
