#!/usr/bin/env python3
"""tokenizer_ref.py: an independent, deliberately simple reference for
lowbit's tokenizers. Used by tests/test_tokenizer.c. Needs the standard
library and the `regex` module (Debian python3-regex: its own engine and
Unicode tables, sharing nothing with PCRE2 or lowbit's generated tables) for
Split patterns; normalizers use unicodedata.

    python3 tokenizer_ref.py TOKENIZER TEXTFILE [--bos] [--records]

TOKENIZER is a llama2.c tokenizer.bin or a Hugging Face tokenizer.json.
Prints the token ids of the text, space separated, on one line. With
--records the file holds several texts separated by the byte 0x1E and one line
is printed per text.

The merge loop is the plain quadratic one: score every adjacent pair, take the
best (leftmost on ties), merge, repeat. It shares no code with the C version
(which uses a heap over a linked list).
"""
import hashlib
import json
import os
import struct
import sys
import unicodedata

try:
    import regex
except ImportError:
    sys.stderr.write("tokenizer_ref.py: the regex module is missing (Debian: apt-get install python3-regex)\n")
    sys.exit(3)

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


# ---------------------------------------------------------------- Hugging Face

def utf8_units(b):
    """Split bytes into (bytes, code point) units; a byte that does not start
    a valid UTF-8 sequence is its own unit with code point U+FFFD."""
    out, i = [], 0
    while i < len(b):
        got = None
        for k in (1, 2, 3, 4):
            if i + k <= len(b):
                try:
                    ch = b[i:i + k].decode("utf-8")
                except UnicodeDecodeError:
                    continue
                if len(ch) == 1:
                    got = (b[i:i + k], ord(ch))
                    break
        if got is None:
            got = (b[i:i + 1], 0xFFFD)
        out.append(got)
        i += len(got[0])
    return out


def is_number(cp):
    return unicodedata.category(chr(cp))[0] == "N"


def valid_runs(b):
    """Pieces of b: (byte offset, str) for each run of valid UTF-8 and
    (byte offset, bytes) for each invalid byte."""
    out, cur, start, off = [], "", 0, 0
    for ub, cp in utf8_units(b):
        if len(ub) == 1 and cp == 0xFFFD:
            if cur:
                out.append((start, cur))
            out.append((off, ub))
            cur, start = "", off + 1
        else:
            if not cur:
                start = off
            cur += chr(cp)
        off += len(ub)
    if cur:
        out.append((start, cur))
    return out


GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def find_matches(rx, b):
    """[start, end, is_match] byte segments covering b: the matches, left to
    right, searching again one character on after an empty match, and the
    text between them. Invalid UTF-8 is never matched: the search runs on
    each valid run separately."""
    matches = []
    for off, run in valid_runs(b):
        if isinstance(run, bytes):
            continue
        cum = [off]
        for ch in run:
            cum.append(cum[-1] + len(ch.encode("utf-8")))
        pos = 0
        while pos <= len(run):
            m = rx.search(run, pos)
            if not m:
                break
            matches.append((cum[m.start()], cum[m.end()]))
            pos = m.end() if m.end() > m.start() else m.end() + 1
    segs, prev = [], 0
    for a, e in matches:
        if a > prev:
            segs.append([prev, a, False])
        segs.append([a, e, True])
        prev = e
    if prev < len(b):
        segs.append([prev, len(b), False])
    return segs


def split_behavior(segs, behavior, invert):
    """Hugging Face's SplitDelimiterBehavior, as the folds in tokenizers'
    normalizer.rs, over [start, end, is_match] segments."""
    segs = [[a, e, m != invert] for a, e, m in segs]
    if behavior == "Removed":
        return [(a, e) for a, e, m in segs if not m]
    if behavior == "Isolated":
        return [(a, e) for a, e, m in segs]
    out, prev = [], False
    order = reversed(segs) if behavior == "MergedWithNext" else segs
    for a, e, m in order:
        if behavior == "MergedWithPrevious" and m and not prev and out:
            out[-1][1] = e
        elif behavior == "MergedWithNext" and m and not prev and out:
            out[-1][0] = a
        elif behavior == "Contiguous" and m == prev and out:
            out[-1][1] = e
        else:
            out.append([a, e])
        prev = m
    if behavior == "MergedWithNext":
        out.reverse()
    return [(a, e) for a, e in out]


GPT2_RX = regex.compile(GPT2)


def split_pattern(b, rx, behavior, invert):
    return [b[a:e] for a, e in split_behavior(find_matches(rx, b), behavior, invert) if e > a]


def normal_form(form, b):
    """unicodedata's normal form of each valid UTF-8 run; invalid bytes kept."""
    out = b""
    for _, run in valid_runs(b):
        out += run if isinstance(run, bytes) else unicodedata.normalize(form, run).encode("utf-8")
    return out


def bytes_to_unicode():
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    m, extra = {}, 0
    for b in range(256):
        if b in keep:
            m[b] = chr(b)
        else:
            m[b] = chr(256 + extra)
            extra += 1
    return m


class HF:
    def __init__(self, path):
        j = json.load(open(path, encoding="utf-8"))
        cfg_path = os.path.join(os.path.dirname(path), "tokenizer_config.json")
        cfg = json.load(open(cfg_path, encoding="utf-8")) if os.path.exists(cfg_path) else {}
        m = j["model"]
        self.vocab = {k.encode("utf-8"): v for k, v in m["vocab"].items()}
        self.added = []
        self.special = set()
        for a in j.get("added_tokens") or []:
            c = a["content"].encode("utf-8")
            self.vocab.setdefault(c, a["id"])
            self.added.append((c, a["id"], a.get("lstrip", False), a.get("rstrip", False)))
            if a.get("special"):
                self.special.add(a["id"])
        self.ranks = {}
        for r, mg in enumerate(m["merges"]):
            a, b = mg.split(" ") if isinstance(mg, str) else mg
            a, b = a.encode("utf-8"), b.encode("utf-8")
            self.ranks[(self.vocab[a], self.vocab[b])] = (r, self.vocab[a + b])
        self.byte_fallback = m.get("byte_fallback", False)
        self.fuse_unk = m.get("fuse_unk", False)
        self.ignore_merges = m.get("ignore_merges", False)
        unk = m.get("unk_token")
        self.unk = self.vocab.get(unk.encode("utf-8")) if unk else None
        self.norm = []
        self.add_norm(j.get("normalizer"))
        self.pre = []
        self.add_pre(j.get("pre_tokenizer"))
        self.byte_level = any(p[0] == "ByteLevel" for p in self.pre)
        self.b2u = bytes_to_unicode()
        self.prefix = []
        self.add_post(j.get("post_processor"))
        if len(self.prefix) == 1:
            self.bos = self.prefix[0]
        else:
            self.bos = self.named(cfg, "bos_token", ["<s>", "<|begin_of_text|>", "<|startoftext|>"])

    def named(self, cfg, key, names):
        v = cfg.get(key)
        if isinstance(v, dict):
            v = v.get("content")
        if isinstance(v, str):
            return self.vocab.get(v.encode("utf-8"))
        for nm in names:
            i = self.vocab.get(nm.encode("utf-8"))
            if i is not None and i in self.special:
                return i
        return None

    def add_norm(self, n):
        if not n:
            return
        if n["type"] == "Sequence":
            for x in n["normalizers"]:
                self.add_norm(x)
        elif n["type"] == "Prepend":
            self.norm.append(("prepend", n["prepend"].encode("utf-8")))
        elif n["type"] == "Replace":
            self.norm.append(("replace", n["pattern"]["String"].encode("utf-8"), n["content"].encode("utf-8")))
        elif n["type"] in ("NFC", "NFD", "NFKC", "NFKD"):
            self.norm.append(("form", n["type"]))
        else:
            raise ValueError("normalizer " + n["type"])

    def add_pre(self, p):
        if not p:
            return
        t = p["type"]
        if t == "Sequence":
            for x in p["pretokenizers"]:
                self.add_pre(x)
        elif t == "ByteLevel":
            self.pre.append(("ByteLevel", p.get("add_prefix_space", True), p.get("use_regex", True)))
        elif t == "Digits":
            self.pre.append(("Digits", p.get("individual_digits", False)))
        elif t == "Metaspace":
            ps = p.get("prepend_scheme")
            scheme = ps if ps else ("always" if p.get("add_prefix_space", True) else "never")
            self.pre.append(("Metaspace", p["replacement"].encode("utf-8"), scheme, p.get("split", True)))
        elif t == "Split":
            pat = p["pattern"]
            rx = regex.compile(pat["Regex"] if "Regex" in pat else regex.escape(pat["String"]))
            self.pre.append(("Split", rx, p.get("behavior", "Isolated"), p.get("invert", False)))
        else:
            raise ValueError("pre_tokenizer " + t)

    def add_post(self, p):
        if not p:
            return
        if p["type"] == "Sequence":
            for x in p["processors"]:
                self.add_post(x)
        elif p["type"] == "TemplateProcessing":
            for item in p["single"]:
                if "Sequence" in item:
                    break
                name = item["SpecialToken"]["id"]
                self.prefix += p["special_tokens"][name]["ids"]

    # -- pipeline
    def normalize(self, s):
        for op in self.norm:
            if op[0] == "prepend":
                s = op[1] + s if s else s
            elif op[0] == "form":
                s = normal_form(op[1], s)
            else:
                s = s.replace(op[1], op[2])
        return s

    def pretokenize(self, pieces, step):
        """pieces: list of (bytes, at_text_start)."""
        if step == len(self.pre):
            return [p for p, _ in pieces]
        p = self.pre[step]
        out = []
        for s, at0 in pieces:
            if not s:
                continue
            if p[0] == "Metaspace":
                rep = p[1]
                s = s.replace(b" ", rep)
                if (p[2] == "always" or (p[2] == "first" and at0)) and not s.startswith(rep):
                    s = rep + s
                parts = [s]
                if p[3]:
                    parts, cur = [], b""
                    i = 0
                    while i < len(s):
                        if s.startswith(rep, i) and cur:
                            parts.append(cur)
                            cur = b""
                        if s.startswith(rep, i):
                            cur += rep
                            i += len(rep)
                        else:
                            cur += s[i:i + 1]
                            i += 1
                    parts.append(cur)
            elif p[0] == "ByteLevel":
                if p[1] and not s.startswith(b" "):
                    s = b" " + s
                parts = split_pattern(s, GPT2_RX, "Isolated", False) if p[2] else [s]
            elif p[0] == "Split":
                parts = split_pattern(s, p[1], p[2], p[3])
            else:  # Digits
                parts, cur, cur_num = [], b"", None
                for ub, cp in utf8_units(s):
                    num = is_number(cp)
                    if cur and (num != cur_num or (num and p[1])):
                        parts.append(cur)
                        cur = b""
                    cur += ub
                    cur_num = num
                if cur:
                    parts.append(cur)
            first = True
            for q in parts:
                out.append((q, at0 and first))
                first = False
        return self.pretokenize(out, step + 1)

    def bpe(self, word):
        if self.byte_level:
            word = "".join(self.b2u[x] for x in word).encode("utf-8")
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        syms, prev_unk = [], False
        for ub, _ in utf8_units(word):
            if ub in self.vocab:
                syms.append(self.vocab[ub])
                prev_unk = False
                continue
            bt = [self.vocab.get(b"<0x%02X>" % x) for x in ub]
            if self.byte_fallback and None not in bt:
                syms += bt
                prev_unk = False
                continue
            if self.unk is None:
                raise ValueError("no unk")
            if not (prev_unk and self.fuse_unk):
                syms.append(self.unk)
            prev_unk = True

        def pair(a, b):
            r = self.ranks.get((a, b))
            return None if r is None else (-r[0], r[1])
        return greedy_merge(syms, pair)

    def segment(self, s, at0):
        if not s:
            return []
        s = self.normalize(s)
        ids = []
        for w in self.pretokenize([(s, at0)], 0):
            if w:
                ids += self.bpe(w)
        return ids

    def encode(self, text, bos):
        ids = []
        if bos:
            ids += self.prefix if self.prefix else ([self.bos] if self.bos is not None else [])
        seg, i = 0, 0
        ws = b" \t\n\r\x0b\x0c"
        by_first = {}
        for a in self.added:
            by_first.setdefault(a[0][:1], []).append(a)
        while i < len(text):
            best = None
            for c, tid, ls, rs in by_first.get(text[i:i + 1], ()):
                if text.startswith(c, i) and (best is None or len(c) > len(best[0])):
                    best = (c, tid, ls, rs)
            if best is None:
                i += 1
                continue
            end = i
            while best[2] and end > seg and text[end - 1] in ws:
                end -= 1
            ids += self.segment(text[seg:end], seg == 0)
            ids.append(best[1])
            i += len(best[0])
            while best[3] and i < len(text) and text[i] in ws:
                i += 1
            seg = i
        ids += self.segment(text[seg:], seg == 0)
        return ids


def load(path):
    with open(path, "rb") as f:
        head = f.read(64).lstrip()
    if head.startswith(b"{"):
        return HF(path)
    return Llama2c(path)


def cache_path(args, data):
    """With LOWBIT_REF_CACHE set (the Makefile sets it for make test and the
    sanitizer runs), the output is kept under a SHA-256 of everything it
    depends on: this script, the tokenizer file, the text and the flags. The
    sanitizer runs then reuse the plain run's reference instead of
    recomputing it; nothing here is ever read unless every byte matches."""
    root = os.environ.get("LOWBIT_REF_CACHE")
    if not root:
        return None
    h = hashlib.sha256()
    for part in (open(__file__, "rb").read(), open(args[0], "rb").read(), data,
                 " ".join(a for a in sys.argv[1:] if a.startswith("--")).encode()):
        h.update(hashlib.sha256(part).digest())
    return os.path.join(root, h.hexdigest() + ".ids")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    bos = "--bos" in sys.argv
    data = open(args[1], "rb").read()
    cached = cache_path(args, data)
    if cached and os.path.exists(cached):
        sys.stdout.write(open(cached).read())
        return
    tok = load(args[0])
    texts = data.split(b"\x1e") if "--records" in sys.argv else [data]
    out = []
    for t in texts:
        out.append(" ".join(str(i) for i in tok.encode(t, bos)))
    text = "\n".join(out) + "\n"
    if cached:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        tmp = "%s.%d.tmp" % (cached, os.getpid())
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, cached)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
