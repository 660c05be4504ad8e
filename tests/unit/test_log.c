/* Unit tests of the log line formats: text and JSON, timestamps, escaping, the journal check and
 * what the default handler writes to stderr. */
#include "vnet/error.h"
#include "vnet/log.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct timespec when = {1767323045, 678901234}; /* 2026-01-02T03:04:05.678Z */

START_TEST(t_text)
{
    char buf[256];
    size_t n = vnet_log_format_line(buf, sizeof(buf), VNET_LOG_FORMAT_TEXT, &when, VNET_LOG_INFO,
                                    "node", "up: vn0");
    ck_assert_str_eq(buf, "2026-01-02T03:04:05.678Z vnet info [node]: up: vn0");
    ck_assert_uint_eq(n, strlen(buf));
    vnet_log_format_line(buf, sizeof(buf), VNET_LOG_FORMAT_TEXT, NULL, VNET_LOG_WARN, "agent", "x");
    ck_assert_str_eq(buf, "vnet warn [agent]: x");
    const struct timespec early = {0, 5000000};
    vnet_log_format_line(buf, sizeof(buf), VNET_LOG_FORMAT_TEXT, &early, VNET_LOG_ERROR, NULL, "m");
    ck_assert_str_eq(buf, "1970-01-01T00:00:00.005Z vnet error [vnet]: m");
}
END_TEST

START_TEST(t_json)
{
    char buf[512];
    vnet_log_format_line(buf, sizeof(buf), VNET_LOG_FORMAT_JSON, &when, VNET_LOG_DEBUG, "store",
                         "plain");
    ck_assert_str_eq(buf, "{\"ts\":\"2026-01-02T03:04:05.678Z\",\"level\":\"debug\","
                          "\"module\":\"store\",\"msg\":\"plain\"}");
    vnet_log_format_line(buf, sizeof(buf), VNET_LOG_FORMAT_JSON, NULL, VNET_LOG_WARN, "m\"x",
                         "a \"q\" b\\c\nd\te\rf\x01g\x7fh\x1f");
    ck_assert_str_eq(buf, "{\"level\":\"warn\",\"module\":\"m\\\"x\","
                          "\"msg\":\"a \\\"q\\\" b\\\\c\\nd\\te\\rf\\u0001g\\u007fh\\u001f\"}");
    /* UTF-8 passes; bytes that are not UTF-8 become U+FFFD, one per byte */
    vnet_log_format_line(buf, sizeof(buf), VNET_LOG_FORMAT_JSON, NULL, VNET_LOG_INFO, "u",
                         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80|\xff|\xc3|\xe0\x80\x80|"
                         "\xed\xa0\x80|\xc0\xaf");
    ck_assert_str_eq(buf, "{\"level\":\"info\",\"module\":\"u\",\"msg\":\"caf\xc3\xa9 "
                          "\xe2\x82\xac \xf0\x9f\x98\x80|\\ufffd|\\ufffd|\\ufffd\\ufffd\\ufffd|"
                          "\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\"}");
}
END_TEST

START_TEST(t_truncate)
{
    char buf[16];
    memset(buf, 'x', sizeof(buf));
    size_t n = vnet_log_format_line(buf, sizeof(buf), VNET_LOG_FORMAT_TEXT, NULL, VNET_LOG_INFO,
                                    "node", "a long message");
    ck_assert_uint_eq(n, strlen("vnet info [node]: a long message"));
    ck_assert_str_eq(buf, "vnet info [node");
    ck_assert_uint_eq(
        vnet_log_format_line(NULL, 0, VNET_LOG_FORMAT_JSON, NULL, VNET_LOG_INFO, "m", "\""),
        strlen("{\"level\":\"info\",\"module\":\"m\",\"msg\":\"\\\"\"}"));
}
END_TEST

START_TEST(t_format_setting)
{
    enum vnet_log_format f = VNET_LOG_FORMAT_TEXT;
    ck_assert_int_eq(vnet_log_format_parse("json", &f), 0);
    ck_assert_int_eq(f, VNET_LOG_FORMAT_JSON);
    ck_assert_int_eq(vnet_log_format_parse("text", &f), 0);
    ck_assert_int_eq(f, VNET_LOG_FORMAT_TEXT);
    ck_assert_int_eq(vnet_log_format_parse("JSON", &f), VNET_EINVAL);
    ck_assert_int_eq(vnet_log_format_parse(NULL, &f), VNET_EINVAL);
    ck_assert_int_eq(vnet_log_get_format(), VNET_LOG_FORMAT_TEXT);
    vnet_log_set_format(VNET_LOG_FORMAT_JSON);
    ck_assert_int_eq(vnet_log_get_format(), VNET_LOG_FORMAT_JSON);
    vnet_log_set_format((enum vnet_log_format)7);
    ck_assert_int_eq(vnet_log_get_format(), VNET_LOG_FORMAT_TEXT);
}
END_TEST

/* Point stderr at a fresh file; returns the file's name. */
static const char *stderr_to_file(void)
{
    static char path[] = "/tmp/test_log.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
    close(fd);
    return path;
}

static void set_journal_stream(bool match)
{
    struct stat st;
    char v[64];
    ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
    snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + (match ? 0 : 1));
    setenv("JOURNAL_STREAM", v, 1);
}

static void read_back(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
    unlink(path);
}

START_TEST(t_journal_check)
{
    const char *path = stderr_to_file();
    unsetenv("JOURNAL_STREAM");
    ck_assert(!vnet_log_stderr_is_journal());
    set_journal_stream(false);
    ck_assert(!vnet_log_stderr_is_journal());
    setenv("JOURNAL_STREAM", "garbage", 1);
    ck_assert(!vnet_log_stderr_is_journal());
    set_journal_stream(true);
    ck_assert(vnet_log_stderr_is_journal());
    unlink(path);
}
END_TEST

/* Not under the journal: every text line starts with a timestamp. (Each test runs in its own
 * process: the default handler looks at JOURNAL_STREAM once.) */
START_TEST(t_default_handler_stamps)
{
    const char *path = stderr_to_file();
    set_journal_stream(false);
    vnet_log(VNET_LOG_WARN, "t", "one");
    vnet_log(VNET_LOG_INFO, "t", "hidden at the default level");
    char got[512];
    read_back(path, got, sizeof(got));
    /* 2026-01-02T03:04:05.678Z vnet warn [t]: one */
    ck_assert_msg(strlen(got) == 24 + strlen(" vnet warn [t]: one\n"), "got '%s'", got);
    ck_assert_msg(got[4] == '-' && got[10] == 'T' && got[19] == '.' && got[23] == 'Z', "got '%s'",
                  got);
    ck_assert_str_eq(got + 24, " vnet warn [t]: one\n");
}
END_TEST

START_TEST(t_default_handler_journal)
{
    const char *path = stderr_to_file();
    set_journal_stream(true);
    vnet_log(VNET_LOG_ERROR, "t", "two");
    vnet_log_set_format(VNET_LOG_FORMAT_JSON);
    vnet_log(VNET_LOG_ERROR, "t", "three");
    char got[512];
    read_back(path, got, sizeof(got));
    char *second = strchr(got, '\n');
    ck_assert_ptr_nonnull(second);
    *second++ = '\0';
    ck_assert_str_eq(got, "vnet error [t]: two"); /* the journal stamps it */
    /* JSON lines always carry ts, for the shipper */
    ck_assert_msg(strncmp(second, "{\"ts\":\"", 7) == 0, "got '%s'", second);
    ck_assert_str_eq(second + 7 + 24,
                     "\",\"level\":\"error\",\"module\":\"t\",\"msg\":\"three\"}\n");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, t_text);
    tcase_add_test(tc, t_json);
    tcase_add_test(tc, t_truncate);
    tcase_add_test(tc, t_format_setting);
    tcase_add_test(tc, t_journal_check);
    tcase_add_test(tc, t_default_handler_stamps);
    tcase_add_test(tc, t_default_handler_journal);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK); /* the default handler's journal check is per process */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
