"""Runs OpenStack tempest's own noVNC acceptance checks against a console URL.

Imports the real `NoVNCConsoleTestJSON` test class from Debian's python3-tempest and runs its
`test_novnc` and `test_novnc_bad_token` methods unchanged; only what tempest would get from a
cloud is supplied: the compute client (whose get_vnc_console returns the console URL given on
the command line) and the server. Tempest's class and resource setup (which would boot a VM
through Keystone and Nova) is skipped. Usage: tempest_novnc.py CONSOLE_URL
Prints one line per test, `PASS name` or `FAIL name: reason`; exit status 0 when all pass.
"""
import sys
import unittest

from tempest.api.compute.servers import test_novnc


class _Client(object):
    def __init__(self, url):
        self.url = url

    def get_vnc_console(self, server_id, type):
        assert type == 'novnc'
        return {'console': {'type': 'novnc', 'url': self.url}}

    def get_remote_console(self, server_id, console_type, protocol):
        return {'remote_console': {'type': console_type, 'protocol': protocol, 'url': self.url}}


def main(url):
    cls = test_novnc.NoVNCConsoleTestJSON
    cls.client = _Client(url)
    cls.server = {'id': '00000000-0000-0000-0000-000000000000'}
    cls.use_get_remote_console = False
    failed = 0
    for name in ('test_novnc', 'test_novnc_bad_token'):
        test = cls(name)
        test._websocket = None
        try:
            getattr(test, name)()
            print('PASS %s' % name)
        except Exception as exc:  # tempest's assertions raise AssertionError; sockets raise OSError
            failed += 1
            print('FAIL %s: %s: %s' % (name, type(exc).__name__, exc))
        finally:
            if test._websocket is not None:
                try:
                    test._websocket.close()
                except Exception:
                    pass
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
