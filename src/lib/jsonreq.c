/*
 * jsonreq.c - request bodies: one JSON object, valid UTF-8, bounded depth,
 * no duplicate fields we read, nothing after the value.
 */
#include <stdio.h>
#include <string.h>

#include "nodo/jsonreq.h"

int
utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, k, n;
	unsigned long cp;

	while (i < len) {
		unsigned char c = s[i];

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else
			return -1;
		if (len - i <= n)
			return -1;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		i += n + 1;
	}
	return 0;
}

/* Depth of [ and { outside strings; cJSON's own limit is 1000. */
static int
too_deep(const char *s, size_t len)
{
	size_t i;
	int depth = 0, in_str = 0;

	for (i = 0; i < len; i++) {
		if (in_str) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_str = 0;
			continue;
		}
		if (s[i] == '"')
			in_str = 1;
		else if (s[i] == '{' || s[i] == '[') {
			if (++depth > JSONREQ_MAX_DEPTH)
				return 1;
		} else if (s[i] == '}' || s[i] == ']')
			depth--;
	}
	return 0;
}

/*
 * Walks a body cJSON accepted, looking for the escape \u0000 (cJSON decodes
 * it into a NUL that ends the C string, so "pw\u0000secret" would silently
 * become "pw"). Returns -1 when one is anywhere but in the string value of
 * a top-level member named without escapes (a key, a nested value: the
 * body is refused as a whole), else 0; *hit is 1 when `field`'s value holds
 * one (field may be NULL).
 */
static int
nul_scan(const char *s, size_t len, const char *field, int *hit)
{
	const char *key = "";
	size_t i, start = 0, keylen = 0;
	int depth = 0, in_str = 0, expect_key = 0, is_key = 0, nul = 0;
	int esc = 0, key_esc = 0;

	if (hit != NULL)
		*hit = 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (in_str) {
			if (c == '\\') {
				esc = 1;
				if (len - i > 5 &&
				    memcmp(s + i + 1, "u0000", 5) == 0)
					nul = 1;
				i++; /* the escaped character */
			} else if (c == '"') {
				in_str = 0;
				if (is_key) {
					if (nul)
						return -1;
					key = s + start;
					keylen = i - start;
					key_esc = esc;
				} else if (nul) {
					if (depth != 1 || key_esc)
						return -1;
					if (hit != NULL && field != NULL &&
					    keylen == strlen(field) &&
					    memcmp(key, field, keylen) == 0)
						*hit = 1;
				}
			}
			continue;
		}
		switch (c) {
		case '"':
			in_str = 1;
			start = i + 1;
			nul = esc = 0;
			is_key = depth == 1 && expect_key;
			expect_key = 0;
			break;
		case '{':
		case '[':
			depth++;
			expect_key = c == '{' && depth == 1;
			break;
		case '}':
		case ']':
			depth--;
			break;
		case ',':
			expect_key = depth == 1;
			break;
		default:
			break;
		}
	}
	return 0;
}

int
jsonreq_has_nul(const char *body, size_t len, const char *field)
{
	int hit;

	if (body == NULL || nul_scan(body, len, field, &hit) == -1)
		return 0;
	return hit;
}

cJSON *
jsonreq_parse_object(const char *body, size_t len, int allow_empty,
    char *detail, size_t dlen)
{
	cJSON *root;
	const char *end = NULL, *stop = body + len;

	if (len == 0) {
		if (allow_empty) {
			if ((root = cJSON_CreateObject()) == NULL)
				snprintf(detail, dlen, "body: out of memory");
			return root;
		}
		snprintf(detail, dlen, "body: a JSON object is required");
		return NULL;
	}
	if (utf8_valid((const unsigned char *)body, len) != 0) {
		snprintf(detail, dlen, "body: not valid UTF-8");
		return NULL;
	}
	if (memchr(body, '\0', len) != NULL) {
		snprintf(detail, dlen, "body: contains a NUL byte");
		return NULL;
	}
	if (too_deep(body, len)) {
		snprintf(detail, dlen,
		    "body: JSON nested deeper than %d levels",
		    JSONREQ_MAX_DEPTH);
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	if (root == NULL) {
		snprintf(detail, dlen, "body: not valid JSON");
		return NULL;
	}
	while (end != NULL && end < stop &&
	    (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
		end++;
	if (end != stop) {
		cJSON_Delete(root);
		snprintf(detail, dlen,
		    "body: unexpected data after the JSON "
		    "value");
		return NULL;
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		snprintf(detail, dlen, "body: must be a JSON object");
		return NULL;
	}
	/* A field's own NUL is that field's error (jsonreq_has_nul). */
	if (nul_scan(body, len, NULL, NULL) == -1) {
		cJSON_Delete(root);
		snprintf(detail, dlen,
		    "body: contains a NUL character (\\u0000) outside a "
		    "field's value");
		return NULL;
	}
	return root;
}

int
jsonreq_string(const cJSON *root, const char *field, int required,
    const char **out, char *detail, size_t dlen)
{
	const cJSON *it, *v = NULL;
	int seen = 0;

	*out = NULL;
	cJSON_ArrayForEach(it, root)
	{
		if (it->string != NULL && strcmp(it->string, field) == 0) {
			v = it;
			seen++;
		}
	}
	if (seen > 1) {
		snprintf(detail, dlen, "%s: given more than once", field);
		return -1;
	}
	if (v == NULL || cJSON_IsNull(v)) {
		if (!required)
			return 0;
		snprintf(detail, dlen, "%s: required field missing", field);
		return -1;
	}
	if (!cJSON_IsString(v) || v->valuestring == NULL) {
		snprintf(detail, dlen, "%s: must be a string", field);
		return -1;
	}
	*out = v->valuestring;
	return 0;
}
