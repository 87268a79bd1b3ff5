/* tokenizer.h: text <-> token ids from a GGUF file's vocabulary, as llama.cpp does it.
 *
 * Two models (tokenizer.ggml.model):
 *   "llama"  SentencePiece BPE (Gemma, Llama 2): spaces become U+2581 "▁" (with one
 *            prepended when tokenizer.ggml.add_space_prefix is true, the default), then
 *            the adjacent pair whose concatenation is a token with the highest score is
 *            merged, ties to the leftmost, until no pair is a token; pieces that are not
 *            tokens fall back to byte tokens "<0xNN>".
 *   "gpt2"   byte-level BPE (Qwen 2, Llama 3, GPT-2): a pre-tokenizer splits the text into
 *            words, each word's bytes map to GPT-2's printable characters, and merges
 *            apply by rank (tokenizer.ggml.merges). Pre-tokenizers implemented by hand
 *            (tokenizer.ggml.pre, llama.cpp's names): "gpt-2"/"phi-2" (GPT2 type),
 *            "llama-bpe"/"llama3"/"llama-v3" (LLAMA3) and "qwen2"/"deepseek-r1-qwen"
 *            (QWEN2); any other, or none, is refused with RB_EINPUT naming tokenizer.ggml.pre
 *            rather than tokenized approximately. Unicode letter/number classes come from
 *            Unicode 14 tables (llama.cpp's may be newer: rare scripts can differ).
 *
 * Special tokens in the text: user-defined tokens (type 4, e.g. Gemma's "\n" runs) are
 * always matched as single tokens, longest first, as llama.cpp does; control tokens
 * (type 3, e.g. "<start_of_turn>") are matched too when parse_special is set, which
 * tokenizer_encode does (llama.cpp's tokenize(..., special=true)).
 *
 * A tokenizer copies what it needs: the gguf_file may be closed after tokenizer_load.
 * Encoding costs O(n log n) in the text length (hash maps built at load). */
#ifndef TOKENIZER_H
#define TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "rb.h"

typedef struct tokenizer tokenizer;

typedef enum {
    TOKENIZER_SPM = 1, /* "llama" */
    TOKENIZER_BPE = 2, /* "gpt2" */
} tokenizer_kind;

/* Token types (tokenizer.ggml.token_type, llama.cpp numbering). */
typedef enum {
    TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4,
    TOKEN_UNUSED = 5, TOKEN_BYTE = 6,
} token_type;

/* Build a tokenizer from the tokenizer.ggml.* keys. Refuses (RB_EINPUT, naming the key)
 * an unknown model or pre-tokenizer, arrays of the wrong type or length, token types
 * outside 1..6, special ids out of range, a merge without a space. A merge whose two parts
 * are not both tokens can never apply and is skipped. scores and token_type are optional
 * (0 and NORMAL). Load copies the vocabulary: ~0.1-0.2 s for Gemma's 262k tokens. */
rb_status tokenizer_load(const gguf_file *g, tokenizer **out, rb_err *e);
void tokenizer_destroy(tokenizer *t); /* NULL is a no-op */

tokenizer_kind tokenizer_model(const tokenizer *t);
int tokenizer_n_vocab(const tokenizer *t);
/* Special ids; -1 when the file names none. */
int32_t tokenizer_bos(const tokenizer *t);
int32_t tokenizer_eos(const tokenizer *t);
/* tokenizer.ggml.add_bos_token (default: 1 for "llama", 0 for "gpt2"). */
int tokenizer_add_bos(const tokenizer *t);
/* 1 if generation should stop at this token: eos, tokenizer.ggml.eot/eom ids, and control
 * tokens llama.cpp treats as end of generation by their text (Gemma's "<end_of_turn>",
 * "<|im_end|>", "<|eot_id|>", "<|endoftext|>", ...). 0 for ids out of range. */
int tokenizer_is_eog(const tokenizer *t, int32_t id);
/* The token's type (token_type) or 0 for an id out of range. */
int tokenizer_token_type(const tokenizer *t, int32_t id);
/* Id of the token whose text is exactly `text` (the vocabulary's own spelling, e.g. "▁the"
 * or "<end_of_turn>"), or -1. */
int32_t tokenizer_find(const tokenizer *t, const char *text);

/* Encode NUL-terminated UTF-8 text (invalid UTF-8 is accepted: SentencePiece falls back to
 * bytes, byte-level BPE replaces invalid sequences by U+FFFD as llama.cpp does). Control
 * tokens written in the text are matched (parse_special); add_bos prepends the bos id
 * when the file has one. *ids is malloc'd (free it), *n its length. */
rb_status tokenizer_encode(const tokenizer *t, const char *text, int add_bos, int32_t **ids,
                           int *n, rb_err *e);
/* Same, for `len` bytes (may contain NUL), choosing whether control tokens in the text
 * are matched (user-defined ones always are). */
rb_status tokenizer_encode_ex(const tokenizer *t, const char *text, size_t len, int add_bos,
                              int parse_special, int32_t **ids, int *n, rb_err *e);

/* The bytes one token stands for: SentencePiece "▁" -> space, byte tokens "<0xNN>" -> that
 * byte, byte-level characters -> their bytes; control, user-defined and unknown tokens ->
 * their text as written (so text with "<start_of_turn>" round-trips). Not NUL-terminated
 * (a byte token may be a NUL); *len receives the length. NULL for an id out of range. */
const char *tokenizer_decode_token(const tokenizer *t, int32_t id, size_t *len);
/* Concatenated pieces of ids[0..n) as malloc'd text, NUL-terminated (*len, if not NULL,
 * excludes the terminator). Refuses an id out of range (RB_EINPUT). A bos id decodes to
 * its text like any control token: decode ids without it to get the input back. */
rb_status tokenizer_decode(const tokenizer *t, const int32_t *ids, int n, char **text,
                           size_t *len, rb_err *e);

#endif
