"""Nova's own console-token code, driven by a test: Debian's python3-nova, with the nova.conf given
as the only argument ([database] connection: the cell database). Reads one JSON command per line
on stdin and answers one JSON line on stdout:

  {"op": "sync"}                                   nova's own schema migrations (db_sync, main)
  {"op": "instance", "uuid": U, "project": P}      an instances row, which authorize requires
  {"op": "authorize", "instance": U, "host": H, "port": N, "ttl": S, "access_url_base": B
   [, "console_type": "serial"]}
                                                   -> {"token": T, "access_url": URL}
  {"op": "validate", "token": T}                   -> {"valid": bool, "host", "port", "instance_uuid"}
  {"op": "clean", "instance": U}                   clean_console_auths_for_instance

Run with Debian's /usr/bin/python3 (python3-nova lives in its dist-packages).
"""
import json
import sys

from nova import config as nova_config

nova_config.parse_args(['porthole-test', '--config-file', sys.argv[1]])

import sqlalchemy as sa  # noqa: E402
from oslo_config import cfg  # noqa: E402

from nova import context as nova_context  # noqa: E402
from nova import exception  # noqa: E402
from nova import objects  # noqa: E402
from nova.db import migration  # noqa: E402

objects.register_all()
ctx = nova_context.get_admin_context()


def handle(cmd):
    op = cmd['op']
    if op == 'sync':
        migration.db_sync(database='main')
        return {'ok': True}
    if op == 'instance':
        engine = sa.create_engine(cfg.CONF.database.connection)
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO instances (uuid, project_id, user_id, deleted, created_at, host)"
                " VALUES (:uuid, :project, 'porthole-test', 0, UTC_TIMESTAMP(), 'compute-1')"),
                {'uuid': cmd['uuid'], 'project': cmd['project']})
        engine.dispose()
        return {'ok': True}
    if op == 'authorize':
        # what nova-compute does for get_vnc_console (nova/compute/manager.py), or with
        # "console_type": "serial" for get_serial_console
        t = objects.ConsoleAuthToken(
            context=ctx, console_type=cmd.get('console_type', 'novnc'), host=cmd['host'], port=cmd['port'],
            internal_access_path=None, instance_uuid=cmd['instance'],
            access_url_base=cmd['access_url_base'])
        token = t.authorize(cmd['ttl'])
        return {'token': token, 'access_url': t.access_url}
    if op == 'validate':
        # what nova-novncproxy does for each connection (nova/console/websocketproxy.py)
        try:
            t = objects.ConsoleAuthToken.validate(ctx, cmd['token'])
        except exception.InvalidToken:
            return {'valid': False}
        return {'valid': True, 'host': t.host, 'port': t.port, 'instance_uuid': t.instance_uuid}
    if op == 'clean':
        # what Nova does when an instance is deleted or moved
        objects.ConsoleAuthToken.clean_console_auths_for_instance(ctx, cmd['instance'])
        return {'ok': True}
    raise ValueError('unknown op %r' % op)


for line in sys.stdin:
    try:
        out = handle(json.loads(line))
    except Exception as e:  # the test shows what Nova said
        out = {'error': '%s: %s' % (type(e).__name__, e)}
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()
