/* Unit tests of examples/progopt.c: the programs' --config files (merging with the command
 * line, flags, repeatable options, errors with file:line, reload diffs). */
#include "progopt.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct option longopts[] = {
    {"dev", required_argument, NULL, 'd'},    {"peer", required_argument, NULL, 'p'},
    {"learn", no_argument, NULL, 'l'},        {"log-level", required_argument, NULL, 'L'},
    {"genkey", required_argument, NULL, 'g'}, {"config", required_argument, NULL, 'C'},
    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
};
static const char *const optional[] = {"genkey", NULL};

static char path[64];

static void write_file(const char *text)
{
    snprintf(path, sizeof(path), "/tmp/test_progopt.XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int load(struct progopt *p, int argc, char **argv)
{
    return progopt_load(p, "prog", longopts, optional, argc, argv);
}

static void assert_argv(const struct progopt *p, const char *const *want)
{
    int i = 0;
    for (; want[i]; i++) {
        ck_assert_int_lt(i, p->argc);
        ck_assert_str_eq(p->argv[i], want[i]);
    }
    ck_assert_int_eq(i, p->argc);
    ck_assert_ptr_null(p->argv[p->argc]);
}

START_TEST(t_merge)
{
    write_file(
        "# comment\n[node]\ndev = tap:vn0\npeer = 10.0.0.1:4789\npeer = 10.0.0.2:4789 ; two\n"
        "learn = yes\nlog-level = warn\n");
    char *argv[] = {"prog", "--config", path, "--log-level", "debug", NULL};
    struct progopt p;
    ck_assert_int_eq(load(&p, 5, argv), 0);
    ck_assert_str_eq(p.config, path);
    /* the file's options first, the command line after; the command line's log-level replaces
     * the file's */
    const char *want[] = {"prog",
                          "--dev=tap:vn0",
                          "--peer=10.0.0.1:4789",
                          "--peer=10.0.0.2:4789",
                          "--learn",
                          "--config",
                          path,
                          "--log-level",
                          "debug",
                          NULL};
    assert_argv(&p, want);
    ck_assert_str_eq(progopt_value(&p, "log-level"), "debug");
    ck_assert_str_eq(progopt_value(&p, "learn"), "");
    ck_assert_ptr_null(progopt_value(&p, "genkey"));
    const char *v[4];
    ck_assert_uint_eq(progopt_values(&p, "peer", v, 4), 2);
    ck_assert_str_eq(v[1], "10.0.0.2:4789");
    char where[128];
    char line4[96];
    snprintf(line4, sizeof(line4), "%s:4: ", path); /* argv[2], the first peer */
    ck_assert_str_eq(progopt_where(&p, 2, where, sizeof(where)), line4);
    ck_assert_str_eq(progopt_where(&p, 6, where, sizeof(where)), ""); /* the command line */
    progopt_free(&p);
    unlink(path);
}
END_TEST

START_TEST(t_cmdline_replaces_repeatable)
{
    write_file("peer = 10.0.0.1:4789\npeer = 10.0.0.2:4789\nlearn = false\n");
    char *argv[] = {"prog", "--pe=10.0.0.9:4789", "--config=x", NULL}; /* a unique prefix */
    char cfg[80];
    snprintf(cfg, sizeof(cfg), "--config=%s", path);
    argv[2] = cfg;
    struct progopt p;
    ck_assert_int_eq(load(&p, 3, argv), 0);
    const char *want[] = {"prog", "--pe=10.0.0.9:4789", cfg, NULL}; /* learn = false: absent */
    assert_argv(&p, want);
    const char *v[4];
    ck_assert_uint_eq(progopt_values(&p, "peer", v, 4), 1);
    ck_assert_str_eq(v[0], "10.0.0.9:4789");
    progopt_free(&p);
    unlink(path);
}
END_TEST

START_TEST(t_optional_value)
{
    char *argv[] = {"prog", "--genkey", "--dev", "tap:x", NULL};
    struct progopt p;
    ck_assert_int_eq(load(&p, 4, argv), 0);
    const char *want[] = {"prog", "--genkey=", "--dev", "tap:x", NULL};
    assert_argv(&p, want);
    ck_assert_ptr_null(p.config);
    progopt_free(&p);
    char *argv2[] = {"prog", "--genkey", "k.key", NULL};
    ck_assert_int_eq(load(&p, 3, argv2), 0);
    ck_assert_str_eq(progopt_value(&p, "genkey"), "k.key");
    progopt_free(&p);
}
END_TEST

static void expect_error(const char *text, int code, const char *msg)
{
    write_file(text);
    char *argv[] = {"prog", "--config", path, NULL};
    struct progopt p;
    ck_assert_int_eq(load(&p, 3, argv), code);
    char want[256];
    snprintf(want, sizeof(want), "%s%s", path, msg);
    ck_assert_str_eq(p.error, want);
    unlink(path);
}

START_TEST(t_errors)
{
    expect_error("dev = tap:x\n\nundrlay = udp:1.2.3.4:5\n", 2, ":3: unknown option 'undrlay'");
    expect_error("de = tap:x\n", 2, ":1: unknown option 'de'"); /* no prefixes in files */
    expect_error("learn = maybe\n", 2, ":1: 'learn' is a flag: want true or false, not 'maybe'");
    expect_error("dev =\n", 2, ":1: 'dev' needs a value");
    expect_error("dev\n", 2, ":1: 'dev' needs a value");
    expect_error("config = other.conf\n", 2, ":1: 'config' is for the command line only");
    expect_error("genkey = k\n", 2, ":1: 'genkey' is for the command line only");
    expect_error("[node\n", 2, ":1: expected 'name = value' or [section]");
    char *argv[] = {"prog", "--config", "/nonexistent/x.conf", NULL};
    struct progopt p;
    ck_assert_int_eq(load(&p, 3, argv), 1);
    ck_assert_str_eq(p.error, "--config /nonexistent/x.conf: No such file or directory");
}
END_TEST

static char changed[256];

static void on_changed(const char *name, void *arg)
{
    (void)arg;
    strcat(changed, name);
    strcat(changed, " ");
}

START_TEST(t_reload_diff)
{
    write_file("dev = tap:a\npeer = 10.0.0.1:1\nlog-level = warn\n");
    char *argv[] = {"prog", "--config", path, "--learn", NULL};
    struct progopt a, b;
    ck_assert_int_eq(load(&a, 4, argv), 0);
    FILE *f = fopen(path, "w");
    fputs("dev = tap:a\npeer = 10.0.0.1:1\npeer = 10.0.0.2:1\nlearn = false\n", f);
    fclose(f);
    ck_assert_int_eq(progopt_reload(&a, &b), 0);
    changed[0] = '\0';
    progopt_diff(&a, &b, on_changed, NULL);
    ck_assert_str_eq(changed, "peer log-level "); /* learn stays: the command line gives it */
    changed[0] = '\0';
    progopt_diff(&a, &a, on_changed, NULL);
    ck_assert_str_eq(changed, "");
    progopt_free(&b);
    progopt_free(&a);
    unlink(path);
}
END_TEST

START_TEST(t_state_dir)
{
    char dir[] = "/tmp/test_progopt_state.XXXXXX", out[256], err[256], sub[300];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/state", dir);
    setenv("VNET_STATE_DIR", sub, 1);
    ck_assert_int_eq(progopt_state_file("controller.db", false, out, sizeof(out), err, sizeof(err)),
                     0);
    struct stat st;
    ck_assert_int_ne(stat(sub, &st), 0); /* not made without @create */
    ck_assert_int_eq(progopt_state_file("controller.db", true, out, sizeof(out), err, sizeof(err)),
                     0);
    ck_assert_int_eq(stat(sub, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    ck_assert_str_eq(out + strlen(sub), "/controller.db");
    rmdir(sub);
    unsetenv("VNET_STATE_DIR");
    ck_assert_int_eq(progopt_state_file("x", false, out, sizeof(out), err, sizeof(err)), 0);
    ck_assert_str_eq(out, "/var/lib/vnet/x");
    rmdir(dir);
}
END_TEST

int main(void)
{
    umask(022);
    Suite *s = suite_create("progopt");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, t_merge);
    tcase_add_test(tc, t_cmdline_replaces_repeatable);
    tcase_add_test(tc, t_optional_value);
    tcase_add_test(tc, t_errors);
    tcase_add_test(tc, t_reload_diff);
    tcase_add_test(tc, t_state_dir);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
