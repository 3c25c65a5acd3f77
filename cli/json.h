/*
 * JSON output for the command-line tool: strings escaped, text that is
 * not valid UTF-8 detected (the agent then writes it as base64).
 */
#ifndef SB_CLI_JSON_H
#define SB_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Whether buf[0..len) is valid UTF-8 (no NUL bytes either: they are
 * legal JSON as \u0000 but many consumers mishandle them). */
bool json_is_text(const char *buf, size_t len);

/* Writes "..." with buf escaped; buf must satisfy json_is_text(). */
void json_string(FILE *out, const char *buf, size_t len);

/* Writes "name":"..." for text, or "name_b64":"..." (standard base64)
 * for anything else. */
void json_field(FILE *out, const char *name, const char *buf, size_t len);

#endif
