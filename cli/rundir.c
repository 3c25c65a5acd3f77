/* The control sockets' default directory (see rundir.h). */
#define _POSIX_C_SOURCE 200809L
#include "rundir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool rundir_dir(char *buf, size_t size)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n = xdg && xdg[0] == '/'
                ? snprintf(buf, size, "%s/scuttlebutt", xdg)
                : snprintf(buf, size, "/tmp/scuttlebutt-%u",
                           (unsigned)getuid());
    return n > 0 && (size_t)n < size;
}

bool rundir_socket(const char *addr, char *buf, size_t size)
{
    char dir[4096];
    if (!rundir_dir(dir, sizeof(dir)))
        return false;
    int n = snprintf(buf, size, "%s/%s" RUNDIR_SUFFIX, dir, addr);
    return n > 0 && (size_t)n < size;
}

/* Whether dir is a directory (not a symlink) of this user's whose mode,
 * masked by `mask`, is `want`; else false, errno set, and err says it is
 * not one "what". */
static bool rundir_is(const char *dir, mode_t mask, mode_t want,
                      const char *what, char *err, size_t size)
{
    struct stat st;
    if (lstat(dir, &st) < 0) {
        int e = errno;
        snprintf(err, size, "%s: %s", dir, strerror(e));
        errno = e;
        return false;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & mask) != want) {
        snprintf(err, size, "%s: not a directory of this user's %s", dir,
                 what);
        errno = EPERM;
        return false;
    }
    return true;
}

bool rundir_make(const char *dir, char *err, size_t size)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, size, "%s: %s", dir, strerror(errno));
        return false;
    }
    return rundir_is(dir, 0777, 0700, "with mode 0700", err, size);
}

bool rundir_check(const char *dir, char *err, size_t size)
{
    /* looser than rundir_make()'s 0700: only others' access matters */
    return rundir_is(dir, 077, 0, "closed to group and others", err, size);
}
