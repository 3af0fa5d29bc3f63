#!/usr/bin/python3
"""Turns a benchmark's JSON into the markdown results file: machine, versions, and every
figure of both servers with the ratio written as N.NN× (above 1: Polaris better)."""
import json
import os
import platform
import sys
import time


def machine():
    mem_kb = 0
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemTotal:'):
                mem_kb = int(line.split()[1])
    model = ''
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    return '%d cores (%s), %.1f GiB memory, %s' % (os.cpu_count(), model, mem_kb / 2**20,
                                                 platform.platform())


def ratio(p, d, higher_is_better):
    if not p or not d:
        return 'n/a'
    r = p / d if higher_is_better else d / p
    return '%.2f×' % r


def imap(data):
    peer = 'dovecot'
    out = ['# IMAP: Polaris vs Dovecot', '',
           'Run %s UTC on %s.' % (time.strftime('%Y-%m-%d %H:%M', time.gmtime()), machine()), '',
           'Versions: %s; %s.' % (data['versions']['polaris'], data['versions'][peer]), '',
           'INBOX of %d messages (the same Maildir for both). Times are medians of alternating '
           'runs; ratio = how many times better Polaris is (above 1.00× Polaris wins, below '
           'it loses).' % data['messages'], '',
           '| workload | Polaris | Dovecot | ratio |', '|---|---|---|---|']
    for name, v in data['seconds'].items():
        out.append('| %s | %.1f ms | %.1f ms | %s |' % (
            name.replace('_', ' '), v['polaris'] * 1000, v[peer] * 1000,
            ratio(v['polaris'], v[peer], False)))
    m = data['mixed_cmds_per_s']
    out.append('| mixed loop, concurrent sessions (commands/s) | %.0f | %.0f | %s |' % (
        m['polaris'], m[peer], ratio(m['polaris'], m[peer], True)))
    i = data['idle_kib_per_session']
    out.append('| memory per idle session (PSS) | %.0f KiB | %.0f KiB | %s |' % (
        i['polaris'], i[peer], ratio(i['polaris'], i[peer], False)))
    out += ['', 'Not compared (different work): loading the data took %.1f s for Polaris '
            '(`polaris mail append DIR`: parse, cache, store) and %.1f s for Dovecot (a file '
            'copy); the first SELECT took %.0f ms on Polaris and %.0f ms on Dovecot, which '
            'builds its index then.' % (
                data['load_s']['polaris'], data['load_s'][peer],
                data['first_select_s']['polaris'] * 1000, data['first_select_s'][peer] * 1000)]
    losses = [n for n, v in data['seconds'].items() if v['polaris'] > v[peer]]
    if m['polaris'] < m[peer]:
        losses.append('mixed loop')
    if i['polaris'] > i[peer]:
        losses.append('idle memory')
    out += ['', 'Where Polaris loses: %s.' % (', '.join(losses) if losses else 'nowhere in this run')]
    if data.get('errors'):
        out += ['', 'Errors during the mixed loop: `%s`' % json.dumps(data['errors'])]
    return '\n'.join(out) + '\n'


if __name__ == '__main__':
    kind, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        print({'imap': imap}[kind](json.load(f)), end='')
