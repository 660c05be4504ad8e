/* Unit tests of vnet_secret_file_read(): the one reader of key and token files. */
#include "vnet/secret.h"

#include "vnet/error.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64], path[128];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/vnet-secret-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/s", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

static void put(const char *content, mode_t mode)
{
    unlink(path);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
    ck_assert_int_eq(chmod(path, mode), 0);
}

START_TEST(t_reads_owner_only_file)
{
    char buf[32], err[256] = "";
    size_t n = 99;
    put("token-123\n", 0600);
    ck_assert_int_eq(
        vnet_secret_file_read(path, "token file", buf, sizeof(buf), &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 10);
    ck_assert_mem_eq(buf, "token-123\n", 10);
    put("", 0400); /* read-only for the owner is fine too; empty is not an error */
    ck_assert_int_eq(vnet_secret_file_read(path, NULL, buf, sizeof(buf), &n, NULL, 0), 0);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(t_refuses_loose_modes)
{
    static const struct {
        mode_t mode;
        const char *says;
    } cases[] = {
        {0644, "is readable by others (mode 0644); chmod 600 it"},
        {0640, "is readable by group (mode 0640); chmod 600 it"},
        {0602, "is writable by others (mode 0602)"},
        {0620, "is writable by group (mode 0620)"},
        {0610, "is accessible by group (mode 0610)"},
        {0601, "is accessible by others (mode 0601)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32], err[256] = "", want[300];
        size_t n = 77;
        put("secret", cases[i].mode);
        ck_assert_int_eq(
            vnet_secret_file_read(path, "key file", buf, sizeof(buf), &n, err, sizeof(err)),
            VNET_EPERM);
        snprintf(want, sizeof(want), "key file %s %s", path, cases[i].says);
        ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "mode %o: got \"%s\", want \"%s\"",
                      (unsigned)cases[i].mode, err, want);
        ck_assert_uint_eq(n, 77); /* untouched on failure */
    }
}
END_TEST

START_TEST(t_missing_dir_and_bad_args)
{
    char buf[32], err[256] = "";
    size_t n;
    ck_assert_int_eq(
        vnet_secret_file_read(path, "key file", buf, sizeof(buf), &n, err, sizeof(err)),
        VNET_ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "cannot open key file"));
    ck_assert_int_eq(vnet_secret_file_read(dir, "key file", buf, sizeof(buf), &n, err, sizeof(err)),
                     VNET_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "is not a regular file"));
    ck_assert_int_eq(vnet_secret_file_read(NULL, NULL, buf, sizeof(buf), &n, NULL, 0), VNET_EINVAL);
    ck_assert_int_eq(vnet_secret_file_read(path, NULL, NULL, 1, &n, NULL, 0), VNET_EINVAL);
    ck_assert_int_eq(vnet_secret_file_read(path, NULL, buf, sizeof(buf), NULL, NULL, 0),
                     VNET_EINVAL);
}
END_TEST

START_TEST(t_length_limit)
{
    char buf[8], err[256] = "";
    size_t n = 0;
    put("12345678", 0600); /* exactly the buffer */
    ck_assert_int_eq(vnet_secret_file_read(path, "f", buf, sizeof(buf), &n, err, sizeof(err)), 0);
    ck_assert_uint_eq(n, 8);
    ck_assert_mem_eq(buf, "12345678", 8);
    put("123456789", 0600); /* one byte more */
    ck_assert_int_eq(vnet_secret_file_read(path, "f", buf, sizeof(buf), &n, err, sizeof(err)),
                     VNET_EMSGSIZE);
    static const char zero[8];
    ck_assert_mem_eq(buf, zero, 8); /* what was read is wiped */
    ck_assert_ptr_nonnull(strstr(err, "is longer than 8 bytes"));
}
END_TEST

static TCase *with_dir(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    return tc;
}

static Suite *vnet_secret_suite(void)
{
    Suite *s = suite_create("secret");
    TCase *tc = with_dir("owner_only");
    tcase_add_test(tc, t_reads_owner_only_file);
    suite_add_tcase(s, tc);
    tc = with_dir("loose_modes");
    tcase_add_test(tc, t_refuses_loose_modes);
    suite_add_tcase(s, tc);
    tc = with_dir("missing_and_args");
    tcase_add_test(tc, t_missing_dir_and_bad_args);
    suite_add_tcase(s, tc);
    tc = with_dir("length_limit");
    tcase_add_test(tc, t_length_limit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(vnet_secret_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
