"""What the benchmark scripts share: the bench account, the corpus words, and waiting for
a server's port on loopback."""
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
