"""Batching of dataset samples: fixed-size numpy arrays stacked straight into tensors.

``torch.utils.data.default_collate`` dispatches every field of every sample through its type map and
converts each array with ``torch.as_tensor`` before stacking. A CenterNet sample is a flat dict of
fixed-size arrays (image or input, heatmaps, per-object targets) plus a small ``meta`` dict, so
:func:`collate_samples` stacks each array field once (into shared memory inside a DataLoader worker,
as the default does; with ``np.stack`` in the main process, ``num_workers=0``, where it takes about half
the CPU time of ``torch.stack``, whose fresh output also page-faults) and leaves only the rest (``meta``,
scalars, odd shapes) to ``default_collate``.
The batch is the one ``default_collate`` returns: same keys, dtypes, shapes and values.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info
from torch.utils.data._utils.collate import collate_tensor_fn

_NUMERIC = frozenset("biuf")  # bool, signed, unsigned, float


def collate_samples(samples: Sequence[Any]) -> Any:
    """Collate a list of sample dicts: (B, ...) tensors for equal-shape numeric arrays, else default.

    Args:
        samples: dataset samples; dicts of numpy arrays and nested values (others go to
            ``default_collate`` whole).

    Returns:
        The batch, equal to ``default_collate(samples)``.
    """
    first = samples[0]
    if not isinstance(first, dict):
        return default_collate(samples)
    batch: dict[str, Any] = {}
    in_worker = get_worker_info() is not None
    for key, value in first.items():
        values = [s[key] for s in samples]
        if type(value) is np.ndarray and value.dtype.kind in _NUMERIC and _stackable(values, value):
            batch[key] = (
                collate_tensor_fn([torch.from_numpy(v) for v in values])
                if in_worker
                else torch.from_numpy(np.stack(values))
            )
        elif type(value) is dict:  # ``meta``: its arrays stacked the same way, the rest by default_collate
            batch[key] = collate_samples(values)
        else:
            batch[key] = default_collate(values)
    return batch


def _stackable(values: list[Any], first: np.ndarray) -> bool:
    """Whether every value is a writeable numpy array of ``first``'s shape and dtype (torch can then use the
    arrays' memory as they are)."""
    shape, dtype = first.shape, first.dtype
    for v in values:
        if type(v) is not np.ndarray or v.shape != shape or v.dtype != dtype or not v.flags.writeable:
            return False
    return True
