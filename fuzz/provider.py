"""A byte decoder with the method names of ``atheris.FuzzedDataProvider``.

The harness always decodes through this class, under the fuzzer and when
a reproducer is replayed by the test suite, so a crash file decodes to the
same call everywhere and the suite needs no atheris. It implements the
subset of FuzzedDataProvider the harness uses, with its own (simpler,
documented) byte semantics: values are read from the front, and an
exhausted buffer yields the smallest value of each request (``lo``,
``False``, ``b""``, ``0.0``), so every byte string decodes to something.
"""

from __future__ import annotations

import struct

__all__ = ["ByteProvider"]


class ByteProvider:
    def __init__(self, data: bytes):
        self._data = bytes(data)
        self._pos = 0

    def remaining_bytes(self) -> int:
        return len(self._data) - self._pos

    def ConsumeBytes(self, count: int) -> bytes:
        count = max(0, int(count))
        chunk = self._data[self._pos:self._pos + count]
        self._pos += len(chunk)
        return chunk

    def ConsumeIntInRange(self, lo: int, hi: int) -> int:
        """An int in [lo, hi]: as many bytes as the range needs, big-endian, modulo the range."""
        if hi <= lo:
            return lo
        span = hi - lo + 1
        raw = self.ConsumeBytes((span.bit_length() + 7) // 8)
        return lo + int.from_bytes(raw, "big") % span if raw else lo

    def ConsumeInt(self, nbytes: int) -> int:
        """A signed int of ``nbytes`` bytes."""
        bits = 8 * nbytes
        return self.ConsumeIntInRange(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)

    def ConsumeBool(self) -> bool:
        return bool(self.ConsumeIntInRange(0, 1))

    def ConsumeFloat(self) -> float:
        """Any double, NaN payloads and infinities included (8 raw bytes)."""
        raw = self.ConsumeBytes(8).ljust(8, b"\0")
        return struct.unpack("<d", raw)[0]

    def PickValueInList(self, values):
        return values[self.ConsumeIntInRange(0, len(values) - 1)]
