/*
 * odoo_hash.c - Odoo's pbkdf2_sha512 password hash (passlib 1.7 format).
 *
 * Odoo stores "$pbkdf2-sha512$<rounds>$<ab64 salt>$<ab64 dk>" in
 * res_users.password; writing that string with SQL is exactly what Odoo's
 * _set_encrypted_password() does (ODOO.md section 2).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "nodo/odoo_hash.h"

size_t
ab64_encode(const unsigned char *in, size_t len, char *out, size_t outlen)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./";
	size_t i, o = 0;

	/* '.' replaces '+' (passlib's ab64); no '=' padding. */
	for (i = 0; i < len; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16;
		size_t n = len - i >= 3 ? 4 : len - i + 1, k;

		if (i + 1 < len)
			v |= (unsigned long)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		for (k = 0; k < n; k++) {
			if (o + 1 >= outlen)
				goto done;
			out[o++] = tab[(v >> (18 - 6 * k)) & 0x3f];
		}
	}
done:
	if (outlen > 0)
		out[o] = '\0';
	return o;
}

int
odoo_hash_password(const char *pw, size_t len, unsigned rounds,
    const unsigned char *salt, char *out, size_t outlen)
{
	unsigned char rnd[ODOO_HASH_SALT_LEN], dk[ODOO_HASH_DK_LEN];
	char salt64[32], dk64[96];
	int n;

	if (salt == NULL) {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			return -1;
		salt = rnd;
	}
	if (rounds == 0 || len > 1024 * 1024 ||
	    PKCS5_PBKDF2_HMAC(pw, (int)len, salt, ODOO_HASH_SALT_LEN,
	        (int)rounds, EVP_sha512(), sizeof(dk), dk) != 1)
		return -1;
	ab64_encode(salt, ODOO_HASH_SALT_LEN, salt64, sizeof(salt64));
	ab64_encode(dk, sizeof(dk), dk64, sizeof(dk64));
	n = snprintf(out, outlen, "$pbkdf2-sha512$%u$%s$%s", rounds, salt64,
	    dk64);
	OPENSSL_cleanse(dk, sizeof(dk));
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return 0;
}
