/*
 * JSON for the command-line tool, on top of jansson: byte strings that
 * may not be text (keys and values are any bytes) and one-line output.
 */
#ifndef SB_CLI_JSON_H
#define SB_CLI_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Whether buf[0..len) is valid UTF-8 (no NUL bytes either: they are
 * legal JSON as \u0000 but many consumers mishandle them). */
bool json_is_text(const char *buf, size_t len);

/* Sets obj.name to the text in buf, or, for bytes that are not text,
 * obj.name_b64 to their standard base64. */
void json_set_bytes(json_t *obj, const char *name, const char *buf,
                    size_t len);

/* Reads obj.name (a string) or obj.name_b64 (base64) into a fresh
 * buffer with a NUL after its *len bytes, which the caller frees with
 * free(). NULL when neither is there or either is malformed. */
char *json_get_bytes(const json_t *obj, const char *name, size_t *len);

/* obj as one line of compact JSON with a newline, in a buffer the
 * caller frees with free(); *len excludes the NUL at its end. Steals
 * the reference to obj (obj may be NULL: out of memory, NULL back). */
char *json_line(json_t *obj, size_t *len);


#endif
