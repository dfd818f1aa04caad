"""Nova's own compute API, driven by a test: Debian's python3-nova's APIRouterV21 (the real routes,
wsgi.Resource, microversion handling, JSON-schema validation and fault rendering), called
in-process with webob, no network and no database. Reads one JSON request per line on stdin:

  {"method": "POST", "path": "/servers/<id>/remote-consoles",
   "headers": {"OpenStack-API-Version": "compute 2.8"}, "body": "<raw text>" or null}

and answers {"status": N, "body": <parsed JSON or null>} on one line of stdout; or

  {"schema": {...}, "body": "<raw text>"}

and answers {"message": "<what Nova's validator says>" or null when the body is valid}: the body
read as Nova reads one (json.loads, an empty body is None) and checked against the schema by
nova.api.validation.validators._SchemaValidator, as @validation.schema does.

Nothing behind the API exists: looking up a server raises InstanceNotFound and listing servers
finds none. So a request that Nova's validation lets through ends in 404 "Instance ... could not be
found." (or an empty list), and one it refuses ends in Nova's 400 with Nova's words, which is
what the test compares. The caller is an admin of project "p", so policy never decides.

Run with Debian's /usr/bin/python3 (python3-nova lives in its dist-packages).
"""
import json
import logging
import sys
import warnings

warnings.simplefilter('ignore')
logging.disable(logging.CRITICAL)

from nova import config as nova_config  # noqa: E402

nova_config.parse_args(['porthole-test'], default_config_files=[])

import webob  # noqa: E402

from nova import context as nova_context  # noqa: E402
from nova import exception  # noqa: E402
from nova import objects  # noqa: E402
from nova.api.openstack.compute import routes  # noqa: E402
from nova.api.validation import validators  # noqa: E402
from nova.compute import api as compute_api  # noqa: E402

objects.register_all()


def _no_instance(self, context, instance_id, *args, **kwargs):
    raise exception.InstanceNotFound(instance_id=instance_id)


def _no_instances(self, context, *args, **kwargs):
    return objects.InstanceList(objects=[])


compute_api.API.get = _no_instance
compute_api.API.get_all = _no_instances

router = routes.APIRouterV21()


def handle(cmd):
    if 'schema' in cmd:
        try:
            instance = json.loads(cmd['body']) if cmd['body'] else None
            validators._SchemaValidator(cmd['schema']).validate(instance)
        except exception.ValidationError as e:
            return {'message': e.format_message()}
        return {'message': None}
    req = webob.Request.blank(cmd['path'], method=cmd['method'], headers=cmd.get('headers') or {})
    if cmd.get('body') is not None:
        req.body = cmd['body'].encode('utf-8')
    req.environ['nova.context'] = nova_context.RequestContext(
        'porthole-test', 'p', is_admin=True, roles=['admin', 'member', 'reader'])
    resp = req.get_response(router)
    try:
        body = json.loads(resp.text) if resp.text else None
    except ValueError:
        body = None
    return {'status': resp.status_int, 'body': body}


for line in sys.stdin:
    try:
        out = handle(json.loads(line))
    except Exception as e:  # the test shows what went wrong on Nova's side
        out = {'error': '%s: %s' % (type(e).__name__, e)}
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()
