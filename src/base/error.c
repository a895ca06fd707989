/* Per-thread error text and the error-code names (see error.h). */
#include "base/error.h"
#include "base/attrs.h"
#include "vmcode.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ERROR_MAX VMC_ERROR_MAX
static _Thread_local char error_text[ERROR_MAX];

int vmc__fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_text, sizeof error_text, fmt, ap);
    va_end(ap);
    return err;
}

int vmc__fail_wrap(int err, const char *fmt, ...)
{
    char old[ERROR_MAX];
    memcpy(old, error_text, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(error_text, sizeof error_text, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof error_text)
        snprintf(error_text + n, sizeof error_text - (size_t)n, ": %s", old);
    return err;
}

VMC_LOAD_PATH void vmc__clear_error(void) { error_text[0] = 0; }

VMC_LOAD_PATH void vmc__error_save(char buf[VMC_ERROR_MAX]) { memcpy(buf, error_text, VMC_ERROR_MAX); }

VMC_LOAD_PATH int vmc__error_restore(int err, const char saved[VMC_ERROR_MAX], const char *also)
{
    char cleanup[ERROR_MAX];
    memcpy(cleanup, error_text, sizeof cleanup);
    memcpy(error_text, saved, ERROR_MAX);
    if (also) {
        /* the failure first, then what its cleanup could not do, as fits */
        size_t n = strnlen(error_text, ERROR_MAX - 1);
        int w = snprintf(error_text + n, ERROR_MAX - n, "; %s: ", also);
        if (w > 0 && (size_t)w < ERROR_MAX - n) {
            n += (size_t)w;
            size_t room = ERROR_MAX - 1 - n, c = strnlen(cleanup, room);
            memcpy(error_text + n, cleanup, c);
            error_text[n + c] = 0;
        }
    }
    return err;
}

const char *vmc_last_error(void) { return error_text; }

const char *vmc_strerror(int err)
{
    switch (err) {
    case 0:        return "success";
    case -ENOMEM:  return "cannot reserve or commit memory";
    case -ENOSPC:  return "no free space in the region satisfies the request";
    case -ENOEXEC: return "not a loadable library (ELF shared object or PE32+ DLL): malformed, or refused by the "
                          "system loader too";
    case -ECANCELED: return "the library refused to load (its DllMain returned FALSE)";
    case -ENOTSUP: return "a feature the private loader does not support";
    case -ENOENT:  return "no such file, symbol or mapping";
    case -EINVAL:  return "invalid argument or option";
    case -EBADF:   return "bad file descriptor";
    case -EFBIG:   return "file size limit (RLIMIT_FSIZE) reached";
    case -EPERM:   return "operation not permitted";
    case -EACCES:  return "permission denied";
    case -EAGAIN:  return "resource temporarily unavailable";
    case -EEXIST:  return "address range already in use";
    case -EMFILE:  return "too many open files";
    case -EBUSY:   return "resource busy";
    case -ENOSYS:  return "not supported by this kernel";
    case -EOVERFLOW: return "value too large";
    default:       return err < 0 ? strerror(-err) : "unknown error";
    }
}
