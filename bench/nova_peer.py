"""Nova's side of the relay benchmark's nova-novncproxy path (bench/nova-novncproxy.ts), with
Debian's python3-nova; run with /usr/bin/python3. Two commands, each given the run's nova.conf:

  mint NOVA_CONF HOST BACKEND_HOST:PORT...
      Nova's own schema migrations on the cell database ([database] connection, SQLite), one
      instance per backend on compute host HOST (objects.Instance.create, as the conductor does),
      and one console token per instance minted as nova-compute mints it for get_vnc_console
      (objects.ConsoleAuthToken(...).authorize). Prints one JSON line:
      {"tokens": [...], "seconds": {"import", "schema", "instances", "tokens"}}

  compute NOVA_CONF HOST
      A stub nova-compute: Nova's own RPC server (nova.rpc.get_server, NovaObjectSerializer, the
      eventlet executor) on the transport_url's RabbitMQ, topic "compute", server HOST, whose
      only endpoint answers validate_console_port with True. Its target is the ComputeManager's
      (no namespace, version 6.1) so the 6.0 call nova-novncproxy sends is dispatched the way a
      real compute would dispatch it; the real manager would ask the hypervisor driver for the
      console's port and compare, which is the only part left out. Prints {"ready": HOST} once
      its queues are declared, then serves until killed.
"""
import sys

if sys.argv[1] == 'compute':
    # what nova/cmd/compute.py gets from `import nova.cmd`: eventlet monkey patching, first
    import nova.monkey_patch  # noqa: F401

import json  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

t_start = time.monotonic()

from nova import config as nova_config  # noqa: E402

command, conf, host = sys.argv[1], sys.argv[2], sys.argv[3]
nova_config.parse_args(['porthole-bench-' + command, '--config-file', conf])

from nova import context as nova_context  # noqa: E402
from nova import objects  # noqa: E402

objects.register_all()


def mint(backends, console_type='novnc'):
    from nova.db import migration
    t_import = time.monotonic()
    migration.db_sync(database='main')
    t_schema = time.monotonic()
    ctx = nova_context.get_admin_context()
    instances = []
    for _ in backends:
        instance = objects.Instance(
            context=ctx, uuid=str(uuid.uuid4()), host=host, node=host,
            project_id='porthole-bench', user_id='porthole-bench',
            vm_state='active', power_state=1)
        instance.create()
        instances.append(instance)
    t_instances = time.monotonic()
    tokens = []
    for instance, backend in zip(instances, backends):
        backend_host, backend_port = backend.rsplit(':', 1)
        # nova/compute/manager.py get_vnc_console ('novnc') and get_serial_console ('serial')
        base = (nova_config.CONF.serial_console.base_url if console_type == 'serial'
                else nova_config.CONF.vnc.novncproxy_base_url)
        token = objects.ConsoleAuthToken(
            context=ctx, console_type=console_type, host=backend_host,
            port=int(backend_port), internal_access_path=None,
            instance_uuid=instance.uuid, access_url_base=base)
        tokens.append(token.authorize(nova_config.CONF.consoleauth.token_ttl))
    t_tokens = time.monotonic()
    print(json.dumps({'tokens': tokens, 'seconds': {
        'import': round(t_import - t_start, 3),
        'schema': round(t_schema - t_import, 3),
        'instances': round(t_instances - t_schema, 3),
        'tokens': round(t_tokens - t_instances, 3)}}), flush=True)


def compute():
    import oslo_messaging as messaging

    from nova.objects import base as objects_base
    from nova import rpc

    class StubComputeManager(object):
        # nova/compute/manager.py: ComputeManager.target
        target = messaging.Target(version='6.1')

        def validate_console_port(self, ctxt, instance, port, console_type):
            return True

    # nova/service.py Service.start: Target(topic=self.topic, server=self.host)
    target = messaging.Target(topic='compute', server=host)
    server = rpc.get_server(target, [StubComputeManager()],
                            objects_base.NovaObjectSerializer())
    server.start()
    print(json.dumps({'ready': host}), flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.stop()


if command == 'mint':
    mint(sys.argv[4:])
elif command == 'mint-serial':
    # bench/serial.ts: tokens as nova-compute mints them for get_serial_console
    mint(sys.argv[4:], 'serial')
elif command == 'compute':
    compute()
else:
    raise SystemExit('usage: nova_peer.py mint|mint-serial|compute NOVA_CONF HOST [BACKEND...]')
