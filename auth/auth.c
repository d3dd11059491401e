/* auth.c - owns the token and its proofs: file checks, key derivation (BLAKE2b), the
 * HMAC-SHA-512-256 proofs of the handshake and their constant-time comparison. */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Domain separation: a key for dshm tokens, a label per role in every proof. */
static const char key_label[] = "dshm token key v1";
static const char client_label[] = "dshm auth client v1";
static const char server_label[] = "dshm auth server v1";

int dshm_auth_init(void) {
  return sodium_init() < 0 ? -EIO : 0;
}

int dshm_auth_key_from_token(struct dshm_auth_key *key, const void *token, size_t len) {
  crypto_generichash_state st;

  if (len == 0 || len > DSHM_AUTH_TOKEN_MAX)
    return -EINVAL;
  if (dshm_auth_init() < 0)
    return -EIO;
  crypto_generichash_init(&st, NULL, 0, sizeof key->k);
  crypto_generichash_update(&st, (const unsigned char *)key_label, sizeof key_label);
  crypto_generichash_update(&st, token, len);
  crypto_generichash_final(&st, key->k, sizeof key->k);
  sodium_memzero(&st, sizeof st);
  return 0;
}

int dshm_auth_key_from_file(struct dshm_auth_key *key, const char *path, char *why,
                            size_t whylen) {
  unsigned char buf[DSHM_AUTH_TOKEN_MAX + 2];
  size_t len = 0;
  struct stat st;
  int fd, err = 0;

  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    err = -errno;
    snprintf(why, whylen, "cannot open token file %s: %s", path, strerror(errno));
    return err;
  }
  if (fstat(fd, &st) < 0) {
    err = -errno;
    snprintf(why, whylen, "cannot stat token file %s: %s", path, strerror(errno));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    err = -EINVAL;
    snprintf(why, whylen, "token file %s is not a regular file", path);
    goto out;
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    err = -EPERM;
    snprintf(why, whylen,
             "token file %s is accessible by group or others (mode %04o); chmod 600 it",
             path, (unsigned)(st.st_mode & 07777));
    goto out;
  }
  while (len < sizeof buf) {
    ssize_t n = read(fd, buf + len, sizeof buf - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      err = -errno;
      snprintf(why, whylen, "cannot read token file %s: %s", path, strerror(errno));
      goto out;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  if (len > 0 && buf[len - 1] == '\n')
    len--;
  if (len == 0 || len > DSHM_AUTH_TOKEN_MAX) {
    err = -EINVAL;
    snprintf(why, whylen, "token file %s is %s", path,
             len == 0 ? "empty" : "too long (more than 4096 bytes)");
    goto out;
  }
  err = dshm_auth_key_from_token(key, buf, len);
  if (err < 0)
    snprintf(why, whylen, "cannot initialise libsodium");
out:
  sodium_memzero(buf, sizeof buf);
  close(fd);
  return err;
}

void dshm_auth_nonce(uint8_t nonce[PROTO_NONCE_SIZE]) {
  randombytes_buf(nonce, PROTO_NONCE_SIZE);
}

void dshm_auth_mac(const struct dshm_auth_key *key, enum dshm_auth_role role,
                   const uint8_t snonce[PROTO_NONCE_SIZE],
                   const uint8_t cnonce[PROTO_NONCE_SIZE], uint8_t mac[PROTO_MAC_SIZE]) {
  const char *label = role == DSHM_AUTH_CLIENT ? client_label : server_label;
  size_t llen = role == DSHM_AUTH_CLIENT ? sizeof client_label : sizeof server_label;
  unsigned char msg[sizeof client_label + 2 * PROTO_NONCE_SIZE];
  unsigned char out[crypto_auth_BYTES];

  _Static_assert(sizeof client_label == sizeof server_label, "labels of one length");
  _Static_assert(crypto_auth_BYTES == PROTO_MAC_SIZE, "MAC size");
  _Static_assert(crypto_auth_KEYBYTES == DSHM_AUTH_KEY_SIZE, "key size");
  memcpy(msg, label, llen);
  memcpy(msg + llen, snonce, PROTO_NONCE_SIZE);
  memcpy(msg + llen + PROTO_NONCE_SIZE, cnonce, PROTO_NONCE_SIZE);
  crypto_auth(out, msg, sizeof msg, key->k);
  memcpy(mac, out, PROTO_MAC_SIZE);
}

int dshm_auth_verify(const struct dshm_auth_key *key, enum dshm_auth_role role,
                     const uint8_t snonce[PROTO_NONCE_SIZE],
                     const uint8_t cnonce[PROTO_NONCE_SIZE],
                     const uint8_t mac[PROTO_MAC_SIZE]) {
  uint8_t want[PROTO_MAC_SIZE];
  int ok;

  dshm_auth_mac(key, role, snonce, cnonce, want);
  ok = sodium_memcmp(want, mac, PROTO_MAC_SIZE) == 0;
  sodium_memzero(want, sizeof want);
  return ok ? 0 : -EACCES;
}

void dshm_auth_key_wipe(struct dshm_auth_key *key) {
  sodium_memzero(key->k, sizeof key->k);
}
