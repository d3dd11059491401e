/* agentname.c - the agent's name (agentname.h). */
#include "agentname.h"

#include <stdint.h>
#include <stdio.h>

void dshm_agent_name(const char *spec, const char *token, const char *token_file, char *out,
                     size_t cap) {
  size_t i, n = (size_t)snprintf(out, cap, "agent-");

  for (i = 0; spec[i] != '\0' && n < 100 && n + 1 < cap; i++) {
    char c = spec[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '-';
    out[n++] = ok ? c : '_';
  }
  out[n] = '\0';
  /* FNV-1a's 64-bit step over the setting's text from a seed of 't' (a token) or 'f' (a
   * token file's path), folded to 32 bits. */
  if (token != NULL || (token_file != NULL && *token_file != '\0')) {
    const char *t = token != NULL ? token : token_file;
    uint64_t h = token != NULL ? 0x74ull : 0x66ull;
    for (; *t != '\0'; t++)
      h = (h ^ (uint8_t)*t) * 0x100000001b3ull;
    snprintf(out + n, cap - n, "-t%08x", (unsigned)(h ^ (h >> 32)));
  }
}
