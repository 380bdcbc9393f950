"""A WaspMQ authenticator written in Python: lets in the clients whose user name and password
are in the `users` table of its config, refuses every other user name with 0x86 (Bad User Name
or Password).

    [[plugins]]
    name = "python-auth"
    path = "examples/plugins/python-auth/python_auth.wasm"
    memory_mb = 128
    [plugins.config]
    users = { alice = "secret" }

Clients without a user name are refused with 0x87 (Not authorized), or left to the rest of the
chain when the config (or the broker's `[auth] allow_anonymous`) says `allow_anonymous = true`.

Build: ./build.sh (componentize-py, targeting the `authenticator` world of wit/plugin.wit).
"""

import hmac
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.lifecycle import Hooks, PluginInfo
from wit_world.imports import log
from wit_world.imports.types import (
    ClientInfo,
    Decision,
    Decision_Allow,
    Decision_Defer,
    Decision_Deny,
    Level,
)

BAD_USER_NAME_OR_PASSWORD = 0x86
NOT_AUTHORIZED = 0x87

# Set by `init`; every instance of the plugin gets its own `init` call.
USERS: dict[str, bytes] = {}
ALLOW_ANONYMOUS = False


class Lifecycle(exports.Lifecycle):
    def init(self, config: str) -> PluginInfo:
        global USERS, ALLOW_ANONYMOUS
        try:
            settings = json.loads(config)
        except ValueError as e:
            raise Err(f"config is not JSON: {e}")
        users = settings.get("users", {})
        if not isinstance(users, dict) or not all(
            isinstance(v, str) for v in users.values()
        ):
            raise Err('`users` must be a table of user name = "password"')
        USERS = {name: password.encode() for name, password in users.items()}
        ALLOW_ANONYMOUS = settings.get("allow_anonymous") is True
        log.log(Level.INFO, f"python-auth: {len(USERS)} users")
        return PluginInfo(
            name="python-auth",
            version="0.1.0",
            hooks=Hooks.AUTHENTICATE,
            message_filters=[],
            authorize_publish_filters=[],
        )


class Authn(exports.Authn):
    def authenticate(self, client: ClientInfo, password: bytes | None) -> Decision:
        if client.username is None:
            return Decision_Defer() if ALLOW_ANONYMOUS else Decision_Deny(NOT_AUTHORIZED)
        expected = USERS.get(client.username)
        # Compare in constant time, and compare even for an unknown user, so the answer's
        # timing does not tell which user names exist.
        given = password if password is not None else b""
        matches = hmac.compare_digest(given, expected if expected is not None else b"\0")
        if expected is not None and password is not None and matches:
            return Decision_Allow()
        return Decision_Deny(BAD_USER_NAME_OR_PASSWORD)
