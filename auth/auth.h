/* auth.h - the shared token: loading it, and the challenge-response proofs of the handshake
 * (docs/security.md). Used by dshm-server and by the shim; wraps libsodium. */
#ifndef DSHM_AUTH_H
#define DSHM_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define DSHM_AUTH_KEY_SIZE  32u
#define DSHM_AUTH_TOKEN_MAX 4096u   /* longest token accepted, in bytes */

/* The MAC key derived from the token. The token itself is not kept. */
struct dshm_auth_key {
  uint8_t k[DSHM_AUTH_KEY_SIZE];
};

/* Which side a proof is for: the two never verify as each other. */
enum dshm_auth_role {
  DSHM_AUTH_CLIENT,
  DSHM_AUTH_SERVER,
};

/* Initialises libsodium (idempotent, thread-safe). 0 or -EIO. */
int dshm_auth_init(void);

/* Derives the key from a token of len bytes. 0, or -EINVAL if it is empty or longer than
 * DSHM_AUTH_TOKEN_MAX. */
int dshm_auth_key_from_token(struct dshm_auth_key *key, const void *token, size_t len);

/* Reads the token file at path and derives the key. Refuses a file that is not a regular
 * file, that group or others may access (it must be chmod 600 or stricter), that cannot
 * be read, or that is empty; one trailing newline is not part of the token. Returns 0, or
 * -errno with a human-readable reason in why (never the token). */
int dshm_auth_key_from_file(struct dshm_auth_key *key, const char *path, char *why,
                            size_t whylen);

/* Fills a fresh random nonce. */
void dshm_auth_nonce(uint8_t nonce[PROTO_NONCE_SIZE]);

/* The proof of role over the server's and the client's nonce. */
void dshm_auth_mac(const struct dshm_auth_key *key, enum dshm_auth_role role,
                   const uint8_t snonce[PROTO_NONCE_SIZE],
                   const uint8_t cnonce[PROTO_NONCE_SIZE], uint8_t mac[PROTO_MAC_SIZE]);

/* Checks a proof in constant time: 0, or -EACCES. */
int dshm_auth_verify(const struct dshm_auth_key *key, enum dshm_auth_role role,
                     const uint8_t snonce[PROTO_NONCE_SIZE],
                     const uint8_t cnonce[PROTO_NONCE_SIZE],
                     const uint8_t mac[PROTO_MAC_SIZE]);

/* Overwrites the key. */
void dshm_auth_key_wipe(struct dshm_auth_key *key);

#endif
