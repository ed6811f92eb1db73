/* JSON (RFC 8259) reader and reply builder; see json.h. */
#include "json.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

struct reader {
  struct jdoc *doc;
  const char *begin, *p, *end;
  int depth;
};

static void *arena_alloc(struct jdoc *doc, size_t n) {
  n = (n + 7) & ~(size_t)7;
  if (doc->used + n > doc->cap) return NULL;
  void *r = doc->arena + doc->used;
  doc->used += n;
  return r;
}

static int fail(struct reader *r, const char *what) {
  snprintf(r->doc->error, sizeof r->doc->error, "column %ld: %s", (long)(r->p - r->begin) + 1, what);
  return -1;
}

static void skip_ws(struct reader *r) {
  while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r' || *r->p == '\n')) r->p++;
}

static int hex4(const char *s, unsigned *out) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int c = (unsigned char)s[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return -1;
    v = v * 16 + (unsigned)d;
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* The decoded string is never longer than its escaped form, so the arena holds it. */
static int parse_string(struct reader *r, char **out, size_t *outlen) {
  r->p++; /* opening quote */
  const char *start = r->p;
  while (r->p < r->end && *r->p != '"') {
    if (*r->p == '\\') r->p++;
    r->p++;
  }
  if (r->p >= r->end) return fail(r, "unterminated string");
  size_t raw = (size_t)(r->p - start);
  char *o = arena_alloc(r->doc, raw + 1);
  if (!o) return fail(r, "line too large");
  size_t n = 0;
  for (const char *s = start; s < r->p; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20) return fail(r, "control character in string");
    if (c != '\\') { o[n++] = (char)c; continue; }
    s++;
    switch (*s) {
    case '"': o[n++] = '"'; break;
    case '\\': o[n++] = '\\'; break;
    case '/': o[n++] = '/'; break;
    case 'b': o[n++] = '\b'; break;
    case 'f': o[n++] = '\f'; break;
    case 'n': o[n++] = '\n'; break;
    case 'r': o[n++] = '\r'; break;
    case 't': o[n++] = '\t'; break;
    case 'u': {
      unsigned cp, lo;
      if (r->p - s < 5 || hex4(s + 1, &cp)) return fail(r, "bad \\u escape");
      s += 4;
      if (cp >= 0xD800 && cp < 0xDC00) {
        if (r->p - s < 7 || s[1] != '\\' || s[2] != 'u' || hex4(s + 3, &lo) || lo < 0xDC00 || lo > 0xDFFF)
          return fail(r, "unpaired surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        s += 6;
      } else if (cp >= 0xDC00 && cp < 0xE000) {
        return fail(r, "unpaired surrogate in \\u escape");
      }
      if (cp == 0) return fail(r, "NUL in string");
      n += put_utf8(o + n, cp); /* at most 4 octets from at least 6 escaped */
      break;
    }
    default: return fail(r, "bad escape in string");
    }
  }
  o[n] = 0;
  r->p++; /* closing quote */
  *out = o;
  *outlen = n;
  return 0;
}

static int parse_number(struct reader *r, struct jval *v) {
  const char *s = r->p;
  int integral = 1;
  if (r->p < r->end && *r->p == '-') r->p++;
  if (r->p >= r->end || !isdigit((unsigned char)*r->p)) return fail(r, "bad number");
  if (*r->p == '0' && r->p + 1 < r->end && isdigit((unsigned char)r->p[1])) return fail(r, "leading zero in number");
  while (r->p < r->end && isdigit((unsigned char)*r->p)) r->p++;
  if (r->p < r->end && *r->p == '.') {
    integral = 0;
    r->p++;
    if (r->p >= r->end || !isdigit((unsigned char)*r->p)) return fail(r, "bad fraction in number");
    while (r->p < r->end && isdigit((unsigned char)*r->p)) r->p++;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    integral = 0;
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
    if (r->p >= r->end || !isdigit((unsigned char)*r->p)) return fail(r, "bad exponent in number");
    while (r->p < r->end && isdigit((unsigned char)*r->p)) r->p++;
  }
  char buf[64];
  size_t n = (size_t)(r->p - s);
  if (n >= sizeof buf) return fail(r, "number too long");
  memcpy(buf, s, n);
  buf[n] = 0;
  v->type = J_NUM;
  v->num = strtod(buf, NULL);
  if (integral && n <= 18) {
    v->is_int = 1;
    v->integer = strtoll(buf, NULL, 10);
  }
  return 0;
}

static int parse_value(struct reader *r, struct jval *v);

static int parse_container(struct reader *r, struct jval *v, int is_obj) {
  if (++r->depth > MAX_DEPTH) return fail(r, "nesting too deep");
  v->type = is_obj ? J_OBJ : J_ARR;
  r->p++;
  struct jval **tail = &v->child;
  skip_ws(r);
  if (r->p < r->end && *r->p == (is_obj ? '}' : ']')) {
    r->p++;
    r->depth--;
    return 0;
  }
  for (;;) {
    struct jval *item = arena_alloc(r->doc, sizeof *item);
    if (!item) return fail(r, "line too large");
    memset(item, 0, sizeof *item);
    skip_ws(r);
    if (is_obj) {
      size_t klen;
      if (r->p >= r->end || *r->p != '"') return fail(r, "expected a member name");
      if (parse_string(r, &item->key, &klen)) return -1;
      skip_ws(r);
      if (r->p >= r->end || *r->p != ':') return fail(r, "expected ':'");
      r->p++;
    }
    if (parse_value(r, item)) return -1;
    *tail = item;
    tail = &item->next;
    skip_ws(r);
    if (r->p < r->end && *r->p == ',') { r->p++; continue; }
    if (r->p < r->end && *r->p == (is_obj ? '}' : ']')) { r->p++; break; }
    return fail(r, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
  r->depth--;
  return 0;
}

static int literal(struct reader *r, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n)) return fail(r, "unexpected character");
  r->p += n;
  return 0;
}

static int parse_value(struct reader *r, struct jval *v) {
  skip_ws(r);
  if (r->p >= r->end) return fail(r, "unexpected end of line");
  switch (*r->p) {
  case '{': return parse_container(r, v, 1);
  case '[': return parse_container(r, v, 0);
  case '"': v->type = J_STR; return parse_string(r, &v->str, &v->len);
  case 't': v->type = J_BOOL; v->boolean = 1; return literal(r, "true");
  case 'f': v->type = J_BOOL; v->boolean = 0; return literal(r, "false");
  case 'n': v->type = J_NULL; return literal(r, "null");
  default: return parse_number(r, v);
  }
}

int json_parse(struct jdoc *doc, const char *text, size_t len) {
  memset(doc, 0, sizeof *doc);
  /* Every node comes from a token of at least one octet, so this bound is never reached
     by valid input; strings need at most their own length plus one. */
  doc->cap = len * (sizeof(struct jval) + 16) + 64;
  doc->arena = malloc(doc->cap);
  if (!doc->arena) {
    snprintf(doc->error, sizeof doc->error, "out of memory");
    return -1;
  }
  struct reader r = {doc, text, text, text + len, 0};
  struct jval *root = arena_alloc(doc, sizeof *root);
  memset(root, 0, sizeof *root);
  if (parse_value(&r, root)) return -1;
  skip_ws(&r);
  if (r.p != r.end) return fail(&r, "trailing characters after the value");
  doc->root = root;
  return 0;
}

void json_free(struct jdoc *doc) {
  free(doc->arena);
  doc->arena = NULL;
}

const struct jval *json_get(const struct jval *obj, const char *key) {
  if (!obj || obj->type != J_OBJ) return NULL;
  for (const struct jval *m = obj->child; m; m = m->next)
    if (!strcmp(m->key, key)) return m;
  return NULL;
}

void sb_init(struct sb *b) {
  b->cap = 256;
  b->n = 0;
  b->p = malloc(b->cap);
  if (!b->p) abort();
  b->p[0] = 0;
}

void sb_free(struct sb *b) { free(b->p); }

static void sb_reserve(struct sb *b, size_t extra) {
  if (b->n + extra + 1 <= b->cap) return;
  while (b->n + extra + 1 > b->cap) b->cap *= 2;
  b->p = realloc(b->p, b->cap);
  if (!b->p) abort();
}

void sb_printf(struct sb *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  sb_reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)n;
}

void sb_str(struct sb *b, const char *s) {
  sb_reserve(b, strlen(s) * 6 + 2);
  b->p[b->n++] = '"';
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      b->p[b->n++] = '\\';
      b->p[b->n++] = (char)c;
    } else if (c < 0x20) {
      b->n += (size_t)sprintf(b->p + b->n, "\\u%04x", c);
    } else {
      b->p[b->n++] = (char)c;
    }
  }
  b->p[b->n++] = '"';
  b->p[b->n] = 0;
}

void sb_hex(struct sb *b, const unsigned char *data, size_t n) {
  static const char digits[] = "0123456789abcdef";
  sb_reserve(b, n * 2 + 2);
  b->p[b->n++] = '"';
  for (size_t i = 0; i < n; i++) {
    b->p[b->n++] = digits[data[i] >> 4];
    b->p[b->n++] = digits[data[i] & 15];
  }
  b->p[b->n++] = '"';
  b->p[b->n] = 0;
}
