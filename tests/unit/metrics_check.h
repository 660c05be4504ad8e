/* A checker of the Prometheus text exposition format 0.0.4, for the unit tests of the metrics
 * (test_metrics.c, test_controller.c): every sample belongs to a family declared by # TYPE before
 * it (histograms: _bucket, _sum, _count), counters end in _total, names and label names are
 * valid, label values use only the three escapes, values are numbers, no series is repeated. */
#ifndef VNET_TEST_METRICS_CHECK_H
#define VNET_TEST_METRICS_CHECK_H

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MC_MAX_FAM    512
#define MC_MAX_SERIES 8192

static bool mc_name_ok(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return false;
    return true;
}

static bool mc_ends(const char *s, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n >= k && memcmp(s + n - k, suf, k) == 0;
}

/* NULL when @text is valid, else a static message naming the line. */
static const char *metrics_check(const char *text)
{
    static char why[512];
    static char fam[MC_MAX_FAM][128], ftype[MC_MAX_FAM][16];
    static char *series[MC_MAX_SERIES];
    size_t nfam = 0, nseries = 0;
    const char *res = NULL;
    int lineno = 0;
    for (const char *p = text; *p && !res;) {
        const char *eol = strchr(p, '\n');
        if (!eol) {
            res = "the text does not end with a newline";
            break;
        }
        lineno++;
        size_t len = (size_t)(eol - p);
        char line[1024];
        if (len >= sizeof(line)) {
            snprintf(why, sizeof(why), "line %d too long", lineno);
            res = why;
            break;
        }
        memcpy(line, p, len);
        line[len] = 0;
        p = eol + 1;
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[128], type[16];
            if (sscanf(line + 7, "%127s %15s", name, type) != 2 ||
                !mc_name_ok(name, strlen(name)) ||
                (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram") &&
                 strcmp(type, "summary") && strcmp(type, "untyped"))) {
                snprintf(why, sizeof(why), "line %d: bad TYPE: %.400s", lineno, line);
                res = why;
                break;
            }
            if (!strcmp(type, "counter") && !mc_ends(name, strlen(name), "_total")) {
                snprintf(why, sizeof(why), "line %d: counter %s does not end in _total", lineno,
                         name);
                res = why;
                break;
            }
            for (size_t i = 0; i < nfam; i++)
                if (!strcmp(fam[i], name)) {
                    snprintf(why, sizeof(why), "line %d: family %s declared twice", lineno, name);
                    res = why;
                }
            if (nfam < MC_MAX_FAM) {
                snprintf(fam[nfam], sizeof(fam[0]), "%s", name);
                snprintf(ftype[nfam++], sizeof(ftype[0]), "%s", type);
            }
            continue;
        }
        if (line[0] == '#' || line[0] == 0) {
            snprintf(why, sizeof(why), "line %d: stray line: %.400s", lineno, line);
            res = why;
            break;
        }
        size_t nl = strcspn(line, "{ ");
        if (!mc_name_ok(line, nl)) {
            snprintf(why, sizeof(why), "line %d: bad metric name: %.400s", lineno, line);
            res = why;
            break;
        }
        bool found = false;
        for (size_t i = 0; i < nfam && !found; i++) {
            size_t fl = strlen(fam[i]);
            if (fl == nl && !memcmp(fam[i], line, nl))
                found = strcmp(ftype[i], "histogram") != 0;
            else if (!strcmp(ftype[i], "histogram") && nl > fl && !memcmp(fam[i], line, fl))
                found = !strcmp(line + fl, "_bucket") || !strncmp(line + fl, "_bucket{", 8) ||
                        !strncmp(line + fl, "_sum", 4) || !strncmp(line + fl, "_count", 6);
        }
        if (!found) {
            snprintf(why, sizeof(why), "line %d: sample of no declared family: %.400s", lineno,
                     line);
            res = why;
            break;
        }
        const char *q = line + nl;
        if (*q == '{') {
            q++;
            while (*q != '}') {
                size_t kl = strcspn(q, "=");
                if (!mc_name_ok(q, kl) || q[kl] != '=' || q[kl + 1] != '"') {
                    snprintf(why, sizeof(why), "line %d: bad label: %.400s", lineno, line);
                    {
                        res = why;
                        goto done;
                    }
                }
                q += kl + 2;
                while (*q && *q != '"') {
                    if (*q == '\\') {
                        if (q[1] != '\\' && q[1] != '"' && q[1] != 'n') {
                            snprintf(why, sizeof(why), "line %d: bad escape: %.400s", lineno, line);
                            {
                                res = why;
                                goto done;
                            }
                        }
                        q++;
                    } else if (*q == '\n') {
                        {
                            res = "raw newline in a label value";
                            goto done;
                        }
                    }
                    q++;
                }
                if (*q != '"') {
                    snprintf(why, sizeof(why), "line %d: unterminated label: %.400s", lineno, line);
                    {
                        res = why;
                        goto done;
                    }
                }
                q++;
                if (*q == ',')
                    q++;
                else if (*q != '}') {
                    snprintf(why, sizeof(why), "line %d: bad label list: %.400s", lineno, line);
                    {
                        res = why;
                        goto done;
                    }
                }
            }
            q++;
        }
        if (*q != ' ') {
            snprintf(why, sizeof(why), "line %d: no value: %.400s", lineno, line);
            res = why;
            break;
        }
        char *end;
        strtod(q + 1, &end);
        if (end == q + 1 || *end) {
            snprintf(why, sizeof(why), "line %d: bad value: %.400s", lineno, line);
            res = why;
            break;
        }
        size_t sl = (size_t)(q - line);
        for (size_t i = 0; i < nseries && !res; i++)
            if (strlen(series[i]) == sl && !memcmp(series[i], line, sl)) {
                snprintf(why, sizeof(why), "line %d: series repeated: %.400s", lineno, line);
                res = why;
            }
        if (nseries < MC_MAX_SERIES)
            series[nseries++] = strndup(line, sl);
    }
done:
    for (size_t i = 0; i < nseries; i++)
        free(series[i]);
    return res;
}

/* The value of the sample line that starts with @series ("name{labels}"), or -1 if absent. */
static double metrics_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, series, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

#endif
