#!/usr/bin/env python3
"""Scrape and read Prometheus text for metrics_test.sh (python3 only: curl is not a dependency).

  metrics_scrape.py get URL OUT      write the body of GET URL to OUT (exit 1 unless 200)
  metrics_scrape.py status URL       print the HTTP status of GET URL
  metrics_scrape.py val FILE NAME [LABEL=VALUE ...]
                                     print the value of the one sample of NAME with those labels
                                     (exit 1 when there is none, 2 when several match)
  metrics_scrape.py check FILE       exit 1 with the reason unless FILE is valid text format 0.0.4
"""
import re
import sys
import urllib.error
import urllib.request

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\[\\"n])*)"(,|$)')


def parse(text):
    """[(name, {label: value}, float)], checking the format on the way."""
    types, out, seen = {}, [], set()
    if text and not text.endswith('\n'):
        raise ValueError('no final newline')
    for ln in text.splitlines():
        if ln.startswith('# HELP '):
            continue
        if ln.startswith('# TYPE '):
            _, _, name, typ = ln.split(' ', 3)
            if typ not in ('counter', 'gauge', 'histogram', 'summary', 'untyped'):
                raise ValueError('bad type: ' + ln)
            if typ == 'counter' and not name.endswith('_total'):
                raise ValueError('counter without _total: ' + name)
            if name in types:
                raise ValueError('family twice: ' + name)
            types[name] = typ
            continue
        m = SAMPLE.match(ln)
        if not m:
            raise ValueError('bad line: ' + ln)
        name, body, value = m.group(1), m.group(3) or '', float(m.group(4))
        fam = name
        for suf in ('_bucket', '_sum', '_count'):
            if name.endswith(suf) and types.get(name[:-len(suf)]) == 'histogram':
                fam = name[:-len(suf)]
        if fam not in types:
            raise ValueError('no TYPE before ' + ln)
        labels, pos = {}, 0
        while pos < len(body):
            lm = LABEL.match(body, pos)
            if not lm:
                raise ValueError('bad labels: ' + ln)
            v = lm.group(2).replace('\\n', '\n').replace('\\"', '"').replace('\\\\', '\\')
            labels[lm.group(1)] = v
            pos = lm.end()
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ValueError('series twice: ' + ln)
        seen.add(key)
        out.append((name, labels, value))
    return out


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ''


def main(argv):
    cmd = argv[1]
    if cmd == 'get':
        code, body = fetch(argv[2])
        if code != 200:
            print('HTTP', code)
            return 1
        with open(argv[3], 'w') as f:
            f.write(body)
        return 0
    if cmd == 'status':
        print(fetch(argv[2])[0])
        return 0
    with open(argv[2]) as f:
        text = f.read()
    if cmd == 'check':
        try:
            parse(text)
        except ValueError as e:
            print(e)
            return 1
        return 0
    if cmd == 'val':
        want = dict(a.split('=', 1) for a in argv[4:])
        hits = [v for n, l, v in parse(text)
                if n == argv[3] and all(l.get(k) == x for k, x in want.items())]
        if len(hits) != 1:
            print('%d samples of %s %s' % (len(hits), argv[3], want), file=sys.stderr)
            return 1 if not hits else 2
        print(repr(hits[0]) if hits[0] != int(hits[0]) else int(hits[0]))
        return 0
    print(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
