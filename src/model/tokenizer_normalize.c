/* tokenizer_normalize.c: the Unicode normalizers of tokenizer.json (NFC,
 * NFD, NFKC, NFKD) through utf8proc (its Unicode version: utf8proc's, 15.0
 * in Debian 12's 2.8). utf8proc accepts only valid UTF-8, so the text is cut
 * at invalid bytes: each valid run is normalized on its own and the invalid
 * bytes are copied as they are (an invalid byte is never part of a
 * composition, so this is what normalizing "around" it means). */
#include <utf8proc.h>
#include "model/tokenizer.h"

/* utf8proc options of each normal form. */
static utf8proc_option_t form_options(lb_norm_kind kind)
{
    switch (kind) {
    case LB_NORM_NFD: return UTF8PROC_STABLE | UTF8PROC_DECOMPOSE;
    case LB_NORM_NFKC: return UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    case LB_NORM_NFKD: return UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
    default: return UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    }
}

/* Appends the normal form of the valid UTF-8 run s[0..n). */
static void normalize_run(utf8proc_option_t opt, const char *s, size_t n, lb_buf *out)
{
    utf8proc_uint8_t *d = NULL;
    utf8proc_ssize_t k = n ? utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &d, opt) : 0;
    if (k > 0 && d) lb__buf_put(out, d, (size_t)k);
    else if (k == 0) ;
    else if (k == UTF8PROC_ERROR_NOMEM) out->failed = true;
    else lb__buf_put(out, s, n);   /* cannot happen for valid UTF-8; keep the text */
    free(d);   /* utf8proc allocates with malloc */
}

/* Cuts the text at invalid bytes and normalizes each valid run. */
void lb__normalize_form(lb_norm_kind kind, const char *s, size_t n, lb_buf *out)
{
    utf8proc_option_t opt = form_options(kind);
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = lb__utf8_decode((const unsigned char *)s + i, n - i, &c);
        if (k == 1 && c == 0xFFFD) {   /* an invalid byte */
            normalize_run(opt, s + run, i - run, out);
            lb__buf_put(out, s + i, 1);
            run = i + 1;
        }
        i += k;
    }
    normalize_run(opt, s + run, n - run, out);
}
