#!/usr/bin/env python3
"""tokenizer_ref.py: an independent, deliberately simple reference for
lowbit's tokenizers (standard library only). Used by tests/test_tokenizer.c.

    python3 tokenizer_ref.py TOKENIZER TEXTFILE [--bos] [--records]

TOKENIZER is a llama2.c tokenizer.bin or a Hugging Face tokenizer.json.
Prints the token ids of the text, space separated, on one line. With
--records the file holds several texts separated by the byte 0x1E and one line
is printed per text.

The merge loop is the plain quadratic one: score every adjacent pair, take the
best (leftmost on ties), merge, repeat. It shares no code with the C version
(which uses a heap over a linked list).
"""
import json
import os
import struct
import sys
import unicodedata

NO = float("-inf")


def greedy_merge(syms, pair_score):
    """syms: list of ids. pair_score(a, b) -> (score, merged) or None.
    Higher score merges first; the leftmost pair wins ties."""
    def sc(i):
        r = pair_score(syms[i], syms[i + 1])
        return (NO, None) if r is None else r
    pairs = [sc(i) for i in range(len(syms) - 1)]
    scores = [p[0] for p in pairs]
    while scores:
        best = max(scores)
        if best == NO:
            break
        i = scores.index(best)
        syms[i] = pairs[i][1]
        del syms[i + 1]
        del pairs[i]
        del scores[i]
        if i < len(syms) - 1:
            pairs[i] = sc(i)
            scores[i] = pairs[i][0]
        if i > 0:
            pairs[i - 1] = sc(i - 1)
            scores[i - 1] = pairs[i - 1][0]
    return syms


# ---------------------------------------------------------------- llama2.c

class Llama2c:
    def __init__(self, path):
        data = open(path, "rb").read()
        off = 4
        self.pieces, self.scores = [], []
        while off < len(data):
            score, n = struct.unpack_from("<fi", data, off)
            off += 8
            if n < 0 or off + n > len(data):
                raise ValueError("truncated")
            self.pieces.append(data[off:off + n])
            self.scores.append(score)
            off += n
        self.ids = {}
        for i, p in enumerate(self.pieces):
            self.ids.setdefault(p, i)

    def unit(self, b):
        if b in self.ids:
            return [self.ids[b]]
        out = []
        for x in b:
            k = self.ids.get(b"<0x%02X>" % x, x + 3)
            out.append(k if k < len(self.pieces) else 0)
        return out

    def encode(self, text, bos):
        toks = [1] if bos else []
        syms = []
        if text:
            syms += self.unit(b" ")
        i = 0
        while i < len(text):
            k = 1
            while i + k < len(text) and k < 4 and (text[i + k] & 0xC0) == 0x80:
                k += 1
            syms += self.unit(text[i:i + k])
            i += k

        def pair(a, b):
            m = self.ids.get(self.pieces[a] + self.pieces[b])
            if m is None or not self.scores[m] > -1e10:
                return None
            return (self.scores[m], m)
        return toks + greedy_merge(syms, pair)


def load(path):
    with open(path, "rb") as f:
        head = f.read(64).lstrip()
    if head.startswith(b"{"):
        return HF(path)
    return Llama2c(path)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    bos = "--bos" in sys.argv
    tok = load(args[0])
    data = open(args[1], "rb").read()
    texts = data.split(b"\x1e") if "--records" in sys.argv else [data]
    out = []
    for t in texts:
        out.append(" ".join(str(i) for i in tok.encode(t, bos)))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
