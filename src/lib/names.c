/*
 * names.c - the subdomain and domain rules (CONTRACT section 3).
 *
 * A tenant's name is at once a DNS label, a PostgreSQL database name and
 * Odoo's dbfilter ^%d$ match, so the rule is the intersection of the three:
 * lower case, 2-63 bytes, letters, digits, '-' and '_' inside.
 */
#include <string.h>

#include "nodo/names.h"

static int
is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int
name_valid(const char *s)
{
	size_t i, len;

	if (s == NULL)
		return -1;
	len = strlen(s);
	if (len < NAME_MIN || len > NAME_MAX_LEN)
		return -1;
	if (!is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
		return -1;
	for (i = 1; i + 1 < len; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-' && s[i] != '_')
			return -1;
	return 0;
}

enum name_check
name_check(const char *s, const char *templ)
{
	static const char *const reserved[] = {
		"postgres",
		"template0",
		"template1",
		"www",
	};
	size_t i;

	if (name_valid(s) != 0)
		return NAME_INVALID;
	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcmp(s, reserved[i]) == 0)
			return NAME_RESERVED;
	if (templ != NULL && strcmp(s, templ) == 0)
		return NAME_RESERVED;
	/* NAME_TMP_PREFIX starts with '_', which name_valid() refuses. */
	return NAME_OK;
}

int
template_name_valid(const char *s)
{
	size_t i, len;

	if (s == NULL || (len = strlen(s)) == 0 || len > NAME_MAX_LEN ||
	    s[0] == '-' ||
	    strncmp(s, NAME_TMP_PREFIX, strlen(NAME_TMP_PREFIX)) == 0)
		return -1;
	for (i = 0; i < len; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-' && s[i] != '_')
			return -1;
	return 0;
}

int
domain_valid(const char *s)
{
	size_t len, label = 0, i;

	if (s == NULL)
		return -1;
	len = strlen(s);
	if (len == 0 || len > 253)
		return -1;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return -1;
			label = 0;
			continue;
		}
		if (!is_lower_alnum(c) && c != '-')
			return -1;
		if (c == '-' && label == 0)
			return -1;
		if (++label > 63)
			return -1;
	}
	if (label == 0 || s[len - 1] == '-')
		return -1;
	return 0;
}
