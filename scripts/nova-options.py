#!/usr/bin/python3
"""Writes src/config/nova-options.json: every option name Nova knows, per section.

Porthole warns about an option or section in nova.conf that is neither its own nor Nova's (a
typo); this is the "Nova's" half. Generated from the installed Nova (Debian's python3-nova) with
oslo.config's own generator, over the namespaces of Nova's etc/nova/nova-config-generator.conf
(the namespaces of nova.conf.sample), plus the keystoneauth1 plugin options that a section with
`auth_type` takes (loaded at run time by the chosen plugin, so absent from the generator's list).
Deprecated names and groups are listed too: Nova still reads them. `historical` holds the
names older releases had (scripts/nova-historical-options.py, from Nova's release tags since
12.0.0, and the removed library options below): an upgraded nova.conf keeps them, Nova ignores
them, and they are not typos.

Run: /usr/bin/python3 scripts/nova-options.py /tmp/nova-historical.txt > src/config/nova-options.json
"""
import json
import sys

from keystoneauth1 import loading as ks_loading
from oslo_config import generator
import nova.version

NAMESPACES = [
    'nova.conf', 'oslo.log', 'oslo.messaging', 'oslo.policy', 'oslo.privsep',
    'oslo.service.periodic_task', 'oslo.service.service', 'oslo.db', 'oslo.db.concurrency',
    'oslo.cache', 'oslo.middleware', 'oslo.concurrency', 'oslo.reports',
    'keystonemiddleware.auth_token', 'osprofiler', 'os_vif', 'oslo.limit',
]

# options of oslo.log, oslo.messaging and oslo.db that old nova.conf files still carry
REMOVED_LIBRARY_OPTIONS = [
    'verbose', 'use_syslog_rfc_format', 'rpc_backend', 'rabbit_host', 'rabbit_hosts', 'rabbit_port',
    'rabbit_userid', 'rabbit_password', 'rabbit_virtual_host', 'rabbit_ha_queues', 'rabbit_use_ssl',
    'notification_driver', 'notification_topics', 'idle_timeout', 'min_pool_size', 'db_backend',
    'sqlite_db',
]

sections = {}
aliases = {}


def known(group, name):
    sections.setdefault(group, set()).add(name.replace('-', '_'))


def plugin_options():
    names = set()
    for loader in ks_loading.get_available_plugin_loaders().values():
        try:
            for o in ks_loading.get_auth_plugin_conf_options(loader):
                names.add(o.dest)
                for d in o.deprecated_opts:
                    if d.name:
                        names.add(d.name.replace('-', '_'))
        except Exception:  # a plugin whose optional dependency is missing
            pass
    return names


for namespace, groups in generator._list_opts(NAMESPACES):
    for group, opts in groups:
        gname = 'DEFAULT' if group is None else getattr(group, 'name', group)
        sections.setdefault(gname, set())
        for opt in opts:
            known(gname, opt.dest)
            for d in opt.deprecated_opts:
                dgroup = d.group or gname
                dname = (d.name or opt.dest).replace('-', '_')
                if (dgroup, dname) != (gname, opt.dest):
                    known(dgroup, dname)
                    aliases[f'{dgroup}.{dname}'] = f'{gname}.{opt.dest}'

auth = plugin_options()
for name, opts in sections.items():
    if 'auth_type' in opts:
        opts |= auth

historical = set(REMOVED_LIBRARY_OPTIONS)
if len(sys.argv) > 1:
    with open(sys.argv[1]) as f:
        historical |= {line.strip() for line in f if line.strip()}

json.dump({
    'generatedBy': 'scripts/nova-options.py',
    'nova': nova.version.version_string(),
    'namespaces': NAMESPACES,
    'sections': {k: sorted(v) for k, v in sorted(sections.items())},
    'aliases': dict(sorted(aliases.items())),
    'historical': sorted(historical),
}, sys.stdout, indent=1, sort_keys=False)
sys.stdout.write('\n')
