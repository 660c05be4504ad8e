/* Unit tests of the error module: a name and a text for every libvnet code and every errno. */
#include "vnet/error.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* libvnet's own codes and the errno codes error.h names, each with its name. */
static const struct {
    int code;
    const char *name;
} named[] = {
    {VNET_OK, "VNET_OK"},
    {VNET_EPERM, "VNET_EPERM"},
    {VNET_ENOENT, "VNET_ENOENT"},
    {VNET_EIO, "VNET_EIO"},
    {VNET_EAGAIN, "VNET_EAGAIN"},
    {VNET_ENOMEM, "VNET_ENOMEM"},
    {VNET_EACCES, "VNET_EACCES"},
    {VNET_EBUSY, "VNET_EBUSY"},
    {VNET_EEXIST, "VNET_EEXIST"},
    {VNET_EINVAL, "VNET_EINVAL"},
    {VNET_ENOSPC, "VNET_ENOSPC"},
    {VNET_ERANGE, "VNET_ERANGE"},
    {VNET_EMSGSIZE, "VNET_EMSGSIZE"},
    {VNET_ENOTSUP, "VNET_ENOTSUP"},
    {VNET_ENOBUFS, "VNET_ENOBUFS"},
    {VNET_EPROTO, "VNET_EPROTO"},
    {VNET_ETIMEDOUT, "VNET_ETIMEDOUT"},
    {VNET_EKEYREJECTED, "VNET_EKEYREJECTED"},
    {VNET_ETRUNC, "VNET_ETRUNC"},
    {VNET_EMALFORM, "VNET_EMALFORM"},
    {VNET_ECHECKSUM, "VNET_ECHECKSUM"},
    {VNET_ESTATE, "VNET_ESTATE"},
    {VNET_ECORRUPT, "VNET_ECORRUPT"},
    {VNET_EVERSION, "VNET_EVERSION"},
};
#define NNAMED (sizeof(named) / sizeof(named[0]))

START_TEST(t_own_codes)
{
    for (size_t i = 0; i < NNAMED; i++) {
        ck_assert_str_eq(vnet_err_name(named[i].code), named[i].name);
        const char *t = vnet_strerror(named[i].code);
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(t[0] != '\0' && strcmp(t, "unknown error") != 0, "%s: \"%s\"", named[i].name,
                      t);
        for (size_t j = 0; j < i; j++)
            ck_assert_msg(strcmp(t, vnet_strerror(named[j].code)) != 0, "%s and %s share \"%s\"",
                          named[i].name, named[j].name, t);
    }
    ck_assert_str_eq(vnet_strerror(VNET_EINVAL), "invalid argument");
    ck_assert_int_eq(VNET_ENOENT, -ENOENT);
    ck_assert_int_lt(VNET_ETRUNC, VNET_E_BASE);
}
END_TEST

/* Errnos error.h does not name: the C library's text and the errno's name, never "unknown". */
START_TEST(t_other_errnos)
{
    static const struct {
        int e;
        const char *name;
    } some[] = {
        {ECONNREFUSED, "ECONNREFUSED"},
        {ECONNRESET, "ECONNRESET"},
        {EHOSTUNREACH, "EHOSTUNREACH"},
        {ENETUNREACH, "ENETUNREACH"},
        {EADDRINUSE, "EADDRINUSE"},
        {EPIPE, "EPIPE"},
        {ENOTCONN, "ENOTCONN"},
        {ECANCELED, "ECANCELED"},
        {EBADF, "EBADF"},
        {ENODEV, "ENODEV"},
    };
    for (size_t i = 0; i < sizeof(some) / sizeof(some[0]); i++) {
        char want[128];
        /* single-threaded test: strerror's buffer is ours */
        snprintf(want, sizeof(want), "%s", strerror(some[i].e));
        ck_assert_str_eq(vnet_strerror(-some[i].e), want);
        ck_assert_str_eq(vnet_err_name(-some[i].e), some[i].name);
    }
}
END_TEST

/* Every errno the C library knows, 1 up to EHWPOISON (the highest Linux has), has a text and a
 * name from libvnet. */
START_TEST(t_every_errno)
{
    int known = 0;
    for (int e = 1; e <= EHWPOISON; e++) {
        const char *t = vnet_strerror(-e), *n = vnet_err_name(-e);
        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_nonnull(n);
        char unknown[64];
        snprintf(unknown, sizeof(unknown), "Unknown error %d", e);
        if (strcmp(strerror(e), unknown) == 0)
            continue; /* a gap in the numbering (41, 58) */
        known++;
        ck_assert_msg(strcmp(t, "unknown error") != 0, "errno %d (%s) has no text", e, strerror(e));
        ck_assert_msg(strcmp(n, "VNET_E?") != 0, "errno %d (%s) has no name", e, strerror(e));
    }
    ck_assert_int_gt(known, 120);
}
END_TEST

START_TEST(t_unknown)
{
    static const int bad[] = {-123456, -200, -4095, VNET_E_BASE, VNET_E_BASE - 100, 1, 4001};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_str_eq(vnet_strerror(bad[i]), "unknown error");
        ck_assert_str_eq(vnet_err_name(bad[i]), "VNET_E?");
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, t_own_codes);
    tcase_add_test(tc, t_other_errnos);
    tcase_add_test(tc, t_every_errno);
    tcase_add_test(tc, t_unknown);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
