/*
 * fuzz_cf_reply.c - libFuzzer target for cf_parse_envelope(): the input is
 * a Cloudflare reply body (not NUL-terminated). Each input is parsed three
 * times: with a message buffer of the size the client uses, with a tiny
 * one (1..8 bytes, from the input's length) so cutting is exercised, and
 * with every output NULL. Message buffers are allocated to their exact
 * size so ASan sees any overflow; the first pass reads libFuzzer's buffer,
 * the others a copy against a guard page (see guard_init()). Checks: a
 * returned root is an object whose "success" is a boolean; the three
 * passes agree; the message is terminated inside its buffer; the code is
 * not negative.
 */
#include <sys/mman.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "nodo/cloudflare.h"
#include "nodo/log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_cf_reply: %s:%d: broken: %s\n",  \
			    __FILE__, __LINE__, #cond);                        \
			abort();                                               \
		}                                                              \
	} while (0)

#define MSG_LEN 200 /* CF_MAX_ERRMSG, the client's message buffer */

#include "guard.h"

struct out {
	cJSON *root;
	int success;
	int code;
};

static void
one_pass(const char *data, size_t size, size_t mlen, struct out *o)
{
	char *msg = NULL;
	const cJSON *ok;

	o->success = -1;
	o->code = -1;
	if (mlen > 0 && (msg = malloc(mlen)) == NULL)
		abort();
	if (msg != NULL)
		memset(msg, 'x', mlen);
	o->root = cf_parse_envelope(data, size, mlen > 0 ? &o->success : NULL,
	    mlen > 0 ? &o->code : NULL, msg, mlen);
	if (mlen > 0) {
		REQUIRE(memchr(msg, '\0', mlen) != NULL);
		REQUIRE(o->success == 0 || o->success == 1);
		REQUIRE(o->code >= 0);
		if (o->root == NULL)
			REQUIRE(
			    o->success == 0 && o->code == 0 && msg[0] == '\0');
	}
	if (o->root != NULL) {
		REQUIRE(cJSON_IsObject(o->root));
		ok = cJSON_GetObjectItemCaseSensitive(o->root, "success");
		REQUIRE(cJSON_IsBool(ok));
		if (mlen > 0)
			REQUIRE(o->success == cJSON_IsTrue(ok));
	}
	free(msg);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_level(LOG_ERR);
	guard_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct out full, tiny, none;

	one_pass((const char *)data, size, MSG_LEN, &full);
	one_pass(guard_copy(data, size), size, 1 + size % 8, &tiny);
	one_pass(guard_copy(data, size), size, 0, &none);
	REQUIRE((full.root == NULL) == (tiny.root == NULL));
	REQUIRE((full.root == NULL) == (none.root == NULL));
	REQUIRE(full.success == tiny.success && full.code == tiny.code);
	cJSON_Delete(full.root);
	cJSON_Delete(tiny.root);
	cJSON_Delete(none.root);
	return 0;
}
