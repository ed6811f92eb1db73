/* A small JSON reader for the protocol's request lines, and a string builder for replies.
 * The reader builds a tree in one arena per line; it rejects anything malformed with a
 * message instead of crashing (depth, length and escapes are all bounded). */
#ifndef RFCDRILL_LWIP_JSON_H
#define RFCDRILL_LWIP_JSON_H

#include <stddef.h>
#include <stdint.h>

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
  enum jtype type;
  int boolean;
  double num;           /* J_NUM */
  int is_int;           /* J_NUM written without fraction or exponent, fits int64 */
  int64_t integer;
  char *str;            /* J_STR: NUL-terminated UTF-8 (embedded NULs rejected) */
  size_t len;
  struct jval *child;   /* J_ARR / J_OBJ: first element */
  struct jval *next;    /* next sibling */
  char *key;            /* member name when inside an object */
};

struct jdoc {
  char *arena;
  size_t used, cap;
  struct jval *root;
  char error[160];
};

/* Parses text (len octets) into doc; returns 0, or -1 with doc->error set. */
int json_parse(struct jdoc *doc, const char *text, size_t len);
void json_free(struct jdoc *doc);

const struct jval *json_get(const struct jval *obj, const char *key);

/* Reply builder. */
struct sb {
  char *p;
  size_t n, cap;
};
void sb_init(struct sb *b);
void sb_free(struct sb *b);
void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_str(struct sb *b, const char *s); /* a JSON string literal, escaped */
void sb_hex(struct sb *b, const unsigned char *data, size_t n); /* a JSON string of hex */

#endif
