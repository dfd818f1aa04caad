"""Nova's console_auth_tokens table on its own, made and written by Debian's python3-nova, for a
test of a database that holds that table and nothing else of a Nova cell database. The nova.conf
given first names the database ([database] connection); then one command, one JSON line out:

  table                              creates console_auth_tokens as Nova's initial migration does
                                     (8f2f1571d55b: Nova's model's columns, indexes and unique
                                     constraint; InnoDB/utf8 on MySQL), nothing else
  authorize INSTANCE HOST PORT TTL BASE
                                     ConsoleAuthToken.authorize as nova-compute mints
                                     -> {"token": T, "access_url": URL}

authorize first checks that the instance exists in the `instances` table
(`_check_instance_exists_in_project`), which this database does not have: that one check is
switched off, so the token row is written by Nova's own code and SQL otherwise.

Run with Debian's /usr/bin/python3 (python3-nova lives in its dist-packages).
"""
import json
import sys

from nova import config as nova_config

nova_config.parse_args(['porthole-test', '--config-file', sys.argv[1]])

import sqlalchemy as sa  # noqa: E402
from oslo_config import cfg  # noqa: E402

from nova import context as nova_context  # noqa: E402
from nova import objects  # noqa: E402
from nova.db.main import api as db_api  # noqa: E402
from nova.db.main import models  # noqa: E402

objects.register_all()


def table():
    model = models.ConsoleAuthToken.__table__
    # the initial migration's own table arguments (the model leaves them to the migration)
    t = sa.Table(model.name, sa.MetaData(), *[c._copy() for c in model.columns],
                 *[sa.Index(i.name, *[c.name for c in i.columns]) for i in model.indexes],
                 *[sa.UniqueConstraint(*[c.name for c in u.columns], name=u.name)
                   for u in model.constraints if isinstance(u, sa.UniqueConstraint)],
                 mysql_engine='InnoDB', mysql_charset='utf8')
    engine = sa.create_engine(cfg.CONF.database.connection)
    t.create(engine)
    engine.dispose()
    return {'ok': True, 'indexes': sorted(i.name for i in t.indexes)}


def authorize(instance, host, port, ttl, base):
    db_api._check_instance_exists_in_project = lambda context, instance_uuid: None
    ctx = nova_context.get_admin_context()
    t = objects.ConsoleAuthToken(
        context=ctx, console_type='novnc', host=host, port=int(port),
        internal_access_path=None, instance_uuid=instance, access_url_base=base)
    token = t.authorize(int(ttl))
    return {'token': token, 'access_url': t.access_url}


try:
    cmd = sys.argv[2]
    out = table() if cmd == 'table' else authorize(*sys.argv[3:8])
except Exception as e:  # the test shows what Nova said
    out = {'error': '%s: %s' % (type(e).__name__, e)}
sys.stdout.write(json.dumps(out) + '\n')
