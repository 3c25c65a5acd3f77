/*
 * Where agents put their control sockets by default, one per bound
 * address: $XDG_RUNTIME_DIR/scuttlebutt/HOST:PORT.sock, or, without
 * XDG_RUNTIME_DIR, /tmp/scuttlebutt-UID/HOST:PORT.sock. The agent makes
 * the directory (0700); `scuttlebutt members` and friends look there once
 * rundir_check() finds it this user's and closed to others.
 */
#ifndef SB_CLI_RUNDIR_H
#define SB_CLI_RUNDIR_H

#include <stdbool.h>
#include <stddef.h>

#define RUNDIR_SUFFIX ".sock"

/* The directory's path into buf. */
bool rundir_dir(char *buf, size_t size);

/* The default socket of the agent bound to addr into buf. */
bool rundir_socket(const char *addr, char *buf, size_t size);

/* Makes the default directory with mode 0700, or checks that the one
 * there is this user's and nobody else's; false with a message in err. */
bool rundir_make(const char *dir, char *err, size_t size);

/* Checks, without making it, that the directory there is this user's
 * (not a symlink) and closed to group and others: in one that another
 * user owns or may write to, a socket may be anyone's, and a client
 * would hand its requests (cluster keys among them) to a stranger. false
 * with a message in err, errno ENOENT when there is none. */
bool rundir_check(const char *dir, char *err, size_t size);

#endif
