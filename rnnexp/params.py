"""Named arrays that live in one contiguous buffer: parameters, gradients, optimizer state.

A FlatParams is a dict `name -> array` whose arrays are views into `.flat`, in a fixed order.
Elementwise work over every parameter (clipping, an optimizer update) then runs as a few
calls on `.flat` instead of a few calls per array: the same arithmetic on the same numbers,
so the same results to the bit, without the per-call overhead that dominates small models.
"""

from __future__ import annotations

from math import prod

import numpy as np

Layout = tuple[tuple[str, tuple[int, ...]], ...]  # (name, shape) in buffer order


class FlatParams(dict):
    """name -> view into `self.flat`. Change values in place (`p[k][...] = x`); replacing
    an entry would detach it from the buffer, so it is refused."""

    def __init__(self, layout: Layout, dtype, flat: np.ndarray | None = None):
        size = sum(prod(shape) for _, shape in layout)
        self.flat = np.zeros(size, dtype) if flat is None else flat
        assert self.flat.shape == (size,) and self.flat.flags.c_contiguous
        self.layout = layout
        offset = 0
        for name, shape in layout:
            n = prod(shape)
            super().__setitem__(name, self.flat[offset : offset + n].reshape(shape))
            offset += n

    @classmethod
    def of(cls, arrays: dict[str, np.ndarray], dtype=None) -> FlatParams:
        """A flat copy of `arrays` (same order, same shapes)."""
        dtype = dtype or np.result_type(*arrays.values())
        out = cls(tuple((k, tuple(v.shape)) for k, v in arrays.items()), dtype)
        for k, v in arrays.items():
            out[k][...] = v
        return out

    def like(self) -> FlatParams:
        """Zeros with the same layout (shares the layout object: a cheap compatibility test)."""
        return FlatParams(self.layout, self.flat.dtype)

    def __setitem__(self, key, value):
        if key in self and value is self[key]:  # `p[k] -= x`: updated in place already
            return
        raise TypeError(f"assign in place, {key!r} is a view into one buffer: p[{key!r}][...] = x")

    def __reduce__(self):  # a plain dict when pickled or deep-copied
        return (dict, (dict(self),))


def same_layout(*ps) -> bool:
    """True when every argument is a FlatParams of the same layout."""
    if not all(isinstance(p, FlatParams) for p in ps):
        return False
    first = ps[0].layout
    return all(p.layout is first or p.layout == first for p in ps[1:])
