/*
 * jsonreq.h - parsing of request bodies: a JSON object in valid UTF-8 and
 * its string fields, with errors that name the field. Used by the HTTP
 * layer and fuzzed on its own. Thread-safe.
 */
#ifndef NODO_JSONREQ_H
#define NODO_JSONREQ_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define JSONREQ_MAX_DEPTH 16 /* nesting we accept in a request body */

/* RFC 3629 UTF-8 (no overlongs, no surrogates): 0 when valid. */
int utf8_valid(const unsigned char *s, size_t len);

/*
 * Parses body (len bytes, not necessarily terminated) as one JSON object.
 * An empty body is an empty object when allow_empty. Returns the root
 * (caller cJSON_Delete()s it) or NULL with a sentence in detail; the error
 * is always "invalid_json" (400).
 */
cJSON *jsonreq_parse_object(const char *body, size_t len, int allow_empty,
    char *detail, size_t dlen);

/*
 * 1 when the string value of the top-level member `field` in body (one
 * jsonreq_parse_object accepted) holds the escape \u0000, which cJSON
 * would have cut the value at. A NUL anywhere else is refused by
 * jsonreq_parse_object already.
 */
int jsonreq_has_nul(const char *body, size_t len, const char *field);

/*
 * The string field `field` of root: 0 with *out (NULL when absent or null
 * and not required), or -1 with detail ("invalid_request", 400): missing,
 * not a string, or given more than once.
 */
int jsonreq_string(const cJSON *root, const char *field, int required,
    const char **out, char *detail, size_t dlen);

#endif
