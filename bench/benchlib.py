"""What the benchmark scripts share: the bench account, the corpus words, waiting for a
server's port on loopback, and finding a server's processes."""
import os
import socket
import time

PASSWORD = 'Bench-Pass1!'
USER = 'bench@example.com'
WORDS = ('alpha beta gamma delta report meeting invoice budget travel lunch project '
         'release design review update notes plan draft agenda summary').split()


def free_port():
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_port(port, alive, timeout=60):
    """Waits until port accepts connections; alive() False means the server died."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not alive():
            raise RuntimeError('server exited before opening port %d' % port)
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError('port %d never opened' % port)


def descendants(pid):
    """pid and every process below it (a server's workers and helpers), from /proc."""
    children = {}
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out
