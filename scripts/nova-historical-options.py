#!/usr/bin/python3
"""Prints every option name any Nova release from 12.0.0 (Liberty, 2015) on declared, one a line.

A nova.conf that has lived through upgrades keeps options Nova has since removed (use_neutron,
firewall_driver): Nova ignores them, so Porthole must not call them typos. Read from the
release tags of a clone of https://opendev.org/openstack/nova (run inside it):
    /usr/bin/python3 scripts/nova-historical-options.py > /tmp/nova-historical.txt
nova-options.py folds the list into src/config/nova-options.json as `historical`.
"""
import re
import subprocess

OPT = re.compile(r"""(?:cfg\.\w*Opt|DeprecatedOpt)\(\s*['"]([\w-]+)['"]""")
tags = [t for t in subprocess.run(['git', 'tag'], capture_output=True, text=True).stdout.split()
        if re.fullmatch(r'(1[2-9]|[2-9]\d)\.0\.0', t)]
names = set()
for tag in tags:
    files = subprocess.run(['git', 'ls-tree', '-r', '--name-only', tag, 'nova'], capture_output=True, text=True).stdout.split()
    wanted = [f'{tag}:{f}' for f in files if f.endswith('.py') and '/tests/' not in f]
    out = subprocess.run(['git', 'cat-file', '--batch'], input='\n'.join(wanted) + '\n', capture_output=True, text=True, errors='replace').stdout
    names.update(n.replace('-', '_') for n in OPT.findall(out))
print('\n'.join(sorted(names)))
