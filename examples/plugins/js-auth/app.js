// A WaspMQ authenticator written in JavaScript: lets in the clients whose user name and
// password are in the `users` table of its config, refuses every other user name with 0x86
// (Bad User Name or Password).
//
//     [[plugins]]
//     name = "js-auth"
//     path = "examples/plugins/js-auth/js_auth.wasm"
//     memory_mb = 128
//     [plugins.config]
//     users = { alice = "secret" }
//
// Clients without a user name are refused with 0x87 (Not authorized), or left to the rest of
// the chain when the config (or the broker's `[auth] allow_anonymous`) says
// `allow_anonymous = true`.
//
// Build: ./build.sh (jco componentize, targeting the `authenticator` world of wit/plugin.wit).

import { log } from "waspmq:plugin/log@0.2.0";

const BAD_USER_NAME_OR_PASSWORD = 0x86;
const NOT_AUTHORIZED = 0x87;

const encoder = new TextEncoder();

// Set by `init`; every instance of the plugin gets its own `init` call.
let users = new Map();
let allowAnonymous = false;

/// Compares two byte arrays in time that depends only on their lengths.
function sameBytes(a, b) {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  }
  return diff === 0;
}

export const lifecycle = {
  init(config) {
    let settings;
    try {
      settings = JSON.parse(config);
    } catch (e) {
      // A thrown value is the `err` of `result<plugin-info, string>`.
      throw `config is not JSON: ${e}`;
    }
    const table = settings.users ?? {};
    if (
      typeof table !== "object" ||
      Array.isArray(table) ||
      !Object.values(table).every((p) => typeof p === "string")
    ) {
      throw '`users` must be a table of user name = "password"';
    }
    users = new Map(
      Object.entries(table).map(([name, password]) => [name, encoder.encode(password)]),
    );
    allowAnonymous = settings.allow_anonymous === true;
    log("info", `js-auth: ${users.size} users`);
    return {
      name: "js-auth",
      version: "0.1.0",
      hooks: { authenticate: true },
      messageFilters: [],
      authorizePublishFilters: [],
    };
  },
};

export const authn = {
  authenticate(client, password) {
    if (client.username === undefined) {
      return allowAnonymous ? { tag: "defer" } : { tag: "deny", val: NOT_AUTHORIZED };
    }
    const expected = users.get(client.username);
    // Compare even for an unknown user, so the answer's timing does not tell which user
    // names exist.
    const matches = sameBytes(password ?? new Uint8Array(), expected ?? new Uint8Array([0]));
    if (expected !== undefined && password !== undefined && matches) {
      return { tag: "allow" };
    }
    return { tag: "deny", val: BAD_USER_NAME_OR_PASSWORD };
  },
};
