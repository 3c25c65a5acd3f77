/* The status page, cli/status.html, built into the binary (CMake writes
 * status_html.c with cmake/embed.cmake). */
#ifndef SB_CLI_STATUS_HTML_H
#define SB_CLI_STATUS_HTML_H

#include <stddef.h>

extern const char status_html[];
extern const size_t status_html_len;

#endif
