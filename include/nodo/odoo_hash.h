/*
 * odoo_hash.h - Odoo's password hash: passlib's pbkdf2_sha512 with ab64
 * encoding, "$pbkdf2-sha512$<rounds>$<salt>$<checksum>" (ODOO.md section 2),
 * computed with libcrypto. Thread-safe.
 */
#ifndef NODO_ODOO_HASH_H
#define NODO_ODOO_HASH_H

#include <stddef.h>

#define ODOO_HASH_ROUNDS   600000 /* Odoo 16.0 (late), 17 and 18 MIN_ROUNDS */
#define ODOO_HASH_SALT_LEN 16     /* bytes, passlib's default_salt_size */
#define ODOO_HASH_DK_LEN   64     /* bytes, SHA-512 output */
#define ODOO_HASH_MAX      160    /* bytes for the whole string with NUL */

/*
 * Hashes pw (len bytes, UTF-8) into out (ODOO_HASH_MAX bytes). salt may be
 * NULL for 16 random bytes. Returns 0, or -1 (randomness or libcrypto failed).
 */
int odoo_hash_password(const char *pw, size_t len, unsigned rounds,
    const unsigned char *salt, char *out, size_t outlen);

/* passlib's ab64: standard base64, '.' for '+', no padding. Returns length. */
size_t ab64_encode(const unsigned char *in, size_t len, char *out,
    size_t outlen);

#endif
