#!/usr/bin/env python3
"""make_test_tokenizers.py: writes small Hugging Face tokenizer.json files of
the kinds lowbit reads but has no real model of on this machine, so the C
tokenizer and tokenizer_ref.py can be compared on them. Each is a real BPE
trained here (most frequent pair first) on the first bytes of the given text.

    python3 make_test_tokenizers.py OUTDIR TEXTFILE...

Writes OUTDIR/{gpt2,llama3,qwen2,metaspace,digits}/tokenizer.json.
"""
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenizer_ref as ref  # noqa: E402

GPT2_RE = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
LLAMA3_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
             "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
QWEN2_RE = LLAMA3_RE.replace("\\p{N}{1,3}", "\\p{N}")


def train(words, base, n_merges):
    """words: list of symbol tuples (strings). Returns (vocab list, merges)."""
    freq = collections.Counter(words)
    vocab = list(base)
    seen = set(vocab)
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in freq.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merges.append([a, b])
        if a + b not in seen:
            seen.add(a + b)
            vocab.append(a + b)
        nf = collections.Counter()
        for w, c in freq.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            nf[tuple(out)] += c
        freq = nf
    return vocab, merges


ADDED = [
    {"id": 0, "content": "<|endoftext|>", "special": True},
    {"id": 1, "content": "<|begin|>", "special": True},
    {"id": 2, "content": "[SEP]", "special": False, "lstrip": True, "rstrip": True},
]


def added_full():
    return [dict({"single_word": False, "lstrip": False, "rstrip": False, "normalized": False}, **a) for a in ADDED]


def template(tok):
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": tok, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [], "special_tokens": {tok: {"id": tok, "ids": [1], "tokens": [tok]}}}


def byte_level(sample, pre, ignore_merges, string_merges):
    b2u = ref.bytes_to_unicode()
    tk = ref.HF.__new__(ref.HF)
    tk.pre = pre
    words = []
    for w in tk.pretokenize([(sample, True)], 0):
        words.append(tuple(b2u[x] for x in w))
    base = [b2u[b] for b in range(256)]
    vocab, merges = train(words, base, 200)
    v = {a["content"]: a["id"] for a in ADDED}
    for s in vocab:
        v[s] = len(v)
    return {"model": {"type": "BPE", "dropout": None, "unk_token": None, "byte_fallback": False, "fuse_unk": False,
                      "ignore_merges": ignore_merges, "vocab": v,
                      "merges": [" ".join(m) for m in merges] if string_merges else merges}}


def write(outdir, name, body):
    os.makedirs(os.path.join(outdir, name), exist_ok=True)
    with open(os.path.join(outdir, name, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(dict({"version": "1.0", "truncation": None, "padding": None, "added_tokens": added_full()}, **body),
                  f, ensure_ascii=False)


def main():
    outdir = sys.argv[1]
    sample = b"".join(open(p, "rb").read(5000) for p in sys.argv[2:])
    sample += "Ünïcödé Γειά σου Привет 你好世界 😀👍 it's I'LL 1234567 \t\r\n".encode("utf-8") * 3

    gpt2 = byte_level(sample, [("ByteLevel", False, True)], False, True)
    gpt2.update(normalizer=None, pre_tokenizer={"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                               "use_regex": True},
                post_processor={"type": "ByteLevel"}, decoder={"type": "ByteLevel"})
    write(outdir, "gpt2", gpt2)

    for name, rex in (("llama3", LLAMA3_RE), ("qwen2", QWEN2_RE)):
        body = byte_level(sample, [("Split", ref.regex.compile(rex), "Isolated", False), ("ByteLevel", False, False)],
                          name == "llama3", False)
        body.update(normalizer={"type": "NFC"} if name == "qwen2" else None,
                    pre_tokenizer={"type": "Sequence", "pretokenizers": [
                        {"type": "Split", "pattern": {"Regex": rex}, "behavior": "Isolated", "invert": False},
                        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
                    post_processor={"type": "Sequence", "processors": [
                        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
                        template("<|begin|>")]} if name == "llama3" else None,
                    decoder={"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True})
        write(outdir, name, body)

    # GPT-2 style with add_prefix_space and individual digits
    body = byte_level(sample, [("Digits", True), ("ByteLevel", True, True)], False, True)
    body.update(normalizer=None, pre_tokenizer={"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": True, "use_regex": True}]}, decoder={"type": "ByteLevel"})
    write(outdir, "digits", body)

    # SentencePiece style through the Metaspace pre-tokenizer, byte fallback
    text = sample.decode("utf-8", "replace")
    words = []
    for w in text.replace(" ", "\u2581").split("\u2581"):
        words.append(tuple("\u2581" + w))
    chars = sorted({c for w in words for c in w})
    base = ["<unk>"] + ["<0x%02X>" % b for b in range(256)] + [c for c in chars if c != "\ufffd"]
    vocab, merges = train(words, base, 200)
    v = {a["content"]: a["id"] for a in ADDED}
    for s in vocab:
        v.setdefault(s, len(v))
    write(outdir, "metaspace", {
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
        "post_processor": template("<|begin|>"),
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "byte_fallback": True, "fuse_unk": True,
                  "vocab": v, "merges": [" ".join(m) for m in merges]}})


if __name__ == "__main__":
    main()
