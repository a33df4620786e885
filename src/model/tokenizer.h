/* tokenizer.h: private layout of lb_tokenizer, shared by tokenizer.c (common
 * parts: string table, BPE merge engine, decode), tokenizer_llama2c.c
 * (llama2.c tokenizer.bin) and tokenizer_hf.c (Hugging Face tokenizer.json).
 * See docs/tokenizers.md for the algorithms. */
#ifndef LB_TOKENIZER_H
#define LB_TOKENIZER_H

#include "core/core.h"

typedef enum lb_tok_kind {
    LB_TOK_LLAMA2C = 0,   /* score-driven merges over the whole text (llama2.c run.c) */
    LB_TOK_HF_BPE = 1,    /* rank-driven merges per pre-token (tokenizers' BPE model) */
} lb_tok_kind;

/* How a Split step turns the pattern's matches into pieces (Hugging Face
 * SplitDelimiterBehavior; the text between matches forms the other pieces). */
typedef enum lb_split_behavior {
    LB_SPLIT_REMOVED = 0,        /* drop the matches */
    LB_SPLIT_ISOLATED = 1,       /* every match is a piece of its own */
    LB_SPLIT_MERGED_PREV = 2,    /* a match joins the piece before it */
    LB_SPLIT_MERGED_NEXT = 3,    /* a match joins the piece after it */
    LB_SPLIT_CONTIGUOUS = 4,     /* consecutive matches form one piece */
} lb_split_behavior;

/* One pre-tokenizer step, applied in order (a Sequence is flattened); each
 * step works on every piece the previous steps produced. */
typedef enum lb_pretok_type {
    LB_PRE_SPLIT_REGEX = 0,   /* Split: a PCRE2 pattern (Regex or String), a behavior, invert */
    LB_PRE_DIGITS = 1,        /* Digits: split digit runs (individual: each digit) */
    LB_PRE_METASPACE = 2,     /* Metaspace: ' ' -> replacement, maybe prepend it, maybe split before it */
    LB_PRE_BYTELEVEL = 3,     /* ByteLevel: maybe prepend ' ', maybe split with the GPT-2 pattern */
} lb_pretok_type;

struct pcre2_real_code_8;     /* pcre2.h's pcre2_code, kept out of this header */

typedef struct lb_pretok {
    lb_pretok_type type;
    struct pcre2_real_code_8 *re;   /* SPLIT_REGEX, BYTELEVEL with split: compiled pattern (owned) */
    lb_split_behavior behavior;     /* SPLIT_REGEX (BYTELEVEL: Isolated) */
    bool invert;              /* SPLIT_REGEX: the pieces between matches count as the matches */
    bool individual;          /* DIGITS */
    bool split;               /* METASPACE: split; BYTELEVEL: use_regex */
    bool add_prefix;          /* BYTELEVEL: add_prefix_space */
    int prepend;              /* METASPACE: 0 never, 1 always, 2 first piece of the text only */
    char metaspace_char[8];   /* METASPACE: UTF-8 of the replacement, usually U+2581 */
} lb_pretok;

/* Normalizer steps, applied in order. */
typedef enum lb_norm_kind {
    LB_NORM_REPLACE = 0,      /* replace every `from` by `to` */
    LB_NORM_PREPEND = 1,      /* prepend `to` to non-empty text */
    LB_NORM_NFC = 2, LB_NORM_NFD = 3, LB_NORM_NFKC = 4, LB_NORM_NFKD = 5,   /* Unicode forms (utf8proc) */
} lb_norm_kind;

typedef struct lb_norm {
    lb_norm_kind kind;
    char *from, *to;          /* REPLACE, PREPEND */
} lb_norm;

typedef struct lb_added_token {
    char *content;
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip;
} lb_added_token;

/* Open-addressing hash from byte strings to ids (strings owned elsewhere). */
typedef struct lb_strmap {
    int32_t *slots;           /* (cap) id or -1 */
    uint64_t cap;             /* power of two */
} lb_strmap;

/* Hash from a pair of ids to a merge (rank and resulting id). */
typedef struct lb_pairmap {
    uint64_t *keys;           /* (cap) (a << 32 | b) + 1, 0 = empty */
    int32_t *rank, *merged;   /* (cap) */
    uint64_t cap, count;
} lb_pairmap;

#define LB_TOK_MAX_PRETOK 8
#define LB_TOK_MAX_NORM 8

struct lb_tokenizer {
    lb_tok_kind kind;
    char *path;               /* what was loaded (for messages) */
    int64_t n_vocab;          /* ids are 0 .. n_vocab-1; pieces may be NULL (holes) */
    char **piece;             /* (n_vocab) raw piece text as stored (not NUL-safe: use piece_len) */
    uint32_t *piece_len;      /* (n_vocab) */
    float *score;             /* (n_vocab) llama2.c merge scores; NULL for HF */
    lb_strmap map;            /* piece text -> id */
    int32_t bos, eos, unk;    /* -1 when none */
    int32_t byte_id[256];     /* id of "<0xNN>" or -1 */
    int max_piece_len;
    uint8_t bigram[8192];     /* bit (x << 8 | y): some piece holds byte x followed by byte y */
    /* llama2.c */
    int32_t space_id;         /* id of " " (the dummy prefix) or -1 */
    /* Hugging Face BPE */
    lb_pairmap merges;
    bool byte_level;          /* a ByteLevel pre-tokenizer maps bytes to GPT-2 unicode pieces */
    bool byte_fallback, fuse_unk, ignore_merges;
    int n_norm;
    lb_norm norm[LB_TOK_MAX_NORM];
    int n_pretok;
    lb_pretok pretok[LB_TOK_MAX_PRETOK];
    /* added tokens matched literally before anything else */
    int n_added;
    lb_added_token *added;    /* sorted by first byte, then longest first */
    int32_t added_first[257]; /* added[added_first[b] .. added_first[b + 1]) start with byte b */
    uint32_t byte_cp[256];    /* GPT-2 byte-to-unicode map */
    int32_t *prefix_ids, *suffix_ids;   /* post-processor template around A */
    int n_prefix, n_suffix;
    /* decoder */
    char *dec_replace_from, *dec_replace_to;  /* e.g. U+2581 -> " " */
    bool dec_byte_level;      /* map GPT-2 unicode pieces back to bytes */
    bool dec_byte_fallback;   /* "<0xNN>" -> the byte */
    int dec_strip_start;      /* leading spaces removed at the start of the text */
    bool *is_special;         /* (n_vocab) added tokens marked special, or NULL */
    char *owned_strings;      /* llama2.c: one block holding all pieces */
};

/* ---- tokenizer.c: shared pieces */
uint64_t lb__tok_hash(const char *s, size_t n);
lb_status lb__strmap_build(lb_tokenizer *t);            /* from piece/piece_len */
int32_t lb__strmap_get(const lb_tokenizer *t, const char *s, size_t n);
/* Id of the concatenation piece[a] + piece[b], or -1. */
int32_t lb__strmap_get_pair(const lb_tokenizer *t, int32_t a, int32_t b);
lb_status lb__pairmap_put(lb_pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged);
bool lb__pairmap_get(const lb_pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged);
void lb__tok_free_fields(lb_tokenizer *t);

/* BPE merge engine. Merges adjacent symbols of ids[0..n) in place, always
 * taking the pair with the smallest key (ties: the leftmost pair) until no
 * pair merges; writes the result back to ids and returns the new count.
 * pair() says whether (a, b) merges, its key and resulting id. O(n log n). */
typedef bool (*lb_pair_fn)(const lb_tokenizer *t, int32_t a, int32_t b, uint32_t *key, int32_t *merged);
typedef struct lb_bpe_work {          /* scratch reused across calls */
    int32_t *prev, *next;
    struct lb_bpe_entry *heap;
    size_t cap_sym, cap_heap;
} lb_bpe_work;
lb_status lb__bpe_merge(const lb_tokenizer *t, lb_pair_fn pair, lb_bpe_work *w, int32_t *ids, int64_t *n);
void lb__bpe_work_free(lb_bpe_work *w);
void lb__tok_build_bigrams(lb_tokenizer *t);   /* after the pieces are set */

/* Growable id vector. */
typedef struct lb_ids {
    int32_t *v;
    int64_t n, cap;
    bool failed;
} lb_ids;
void lb__ids_push(lb_ids *a, int32_t id);

/* Length of the UTF-8 unit starting at s[0] the way llama2.c groups bytes:
 * one byte plus following continuation bytes, at most 4 in all. */
size_t lb__utf8_group(const unsigned char *s, size_t n);

/* ---- tokenizer_llama2c.c */
lb_status lb__tokenizer_from_llama2c(const uint8_t *data, size_t size, const char *name, lb_tokenizer **out);
lb_status lb__llama2c_encode(const lb_tokenizer *t, const char *text, size_t len, int add_bos, lb_ids *out);

/* ---- tokenizer_hf.c. config_json (tokenizer_config.json text, may be NULL)
 * supplies bos/eos names when the post-processor does not. */
lb_status lb__tokenizer_from_hf_json(const char *json, size_t n, const char *name, const char *config_json,
                                     size_t config_n, lb_tokenizer **out);
lb_status lb__hf_encode(const lb_tokenizer *t, const char *text, size_t len, int add_bos, lb_ids *out);

/* ---- tokenizer_regex.c: Split patterns and pre-tokenizer splitting.
 * Compiles a Split pattern (literal: a String pattern) into p->re; messages
 * name `name`. The GPT-2 pattern ByteLevel uses is lb__re_gpt2. */
extern const char lb__re_gpt2[];
lb_status lb__pretok_compile(lb_pretok *p, const char *pattern, bool literal, const char *name);
void lb__pretok_free(lb_pretok *p);
/* Calls emit(ctx, off, len) for the pieces step p makes of s[0..n), in
 * order; may fail (allocation, a pattern exceeding PCRE2's match limits). */
typedef void (*lb_emit_fn)(void *ctx, size_t off, size_t len);
lb_status lb__pretok_split(const lb_pretok *p, const char *s, size_t n, lb_emit_fn emit, void *ctx);
/* General category of c as an index into the generated table's names
 * ("Lu", "Ll", ...), -1 for unassigned (Cn). Unicode version:
 * lb__uni_version(). */
int lb__uni_category(uint32_t c);
const char *lb__uni_version(void);
/* Decode one UTF-8 code point; invalid bytes decode as U+FFFD of length 1. */
size_t lb__utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* ---- tokenizer_normalize.c: appends the Unicode normal form `kind` of
 * s[0..n) to out (utf8proc); bytes that are not valid UTF-8 are copied. */
void lb__normalize_form(lb_norm_kind kind, const char *s, size_t n, lb_buf *out);

#endif /* LB_TOKENIZER_H */
