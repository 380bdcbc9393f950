// MQTT 5 enhanced authentication seen by MQTT.js: SCRAM-SHA-256 (RFC 5802 / 7677) against the
// auth-scram plugin. The client-first-message goes in CONNECT's Authentication Data, the
// server-first-message arrives in AUTH 0x18 (MQTT.js `handleAuth`), the client-final-message
// answers in AUTH 0x18, and CONNACK carries the server's signature, checked here. Then a wrong
// password must be refused. Env: BROKER_URL, SCRAM_USER, SCRAM_PASSWORD. Prints `OK ...` lines.
import crypto from 'node:crypto';
import mqtt from 'mqtt';

const url = process.env.BROKER_URL;
const user = process.env.SCRAM_USER;
const password = process.env.SCRAM_PASSWORD;
const deadlineMs = Number(process.env.TIMEOUT_MS || '30000');
const METHOD = 'SCRAM-SHA-256';
const timer = setTimeout(() => fail(`timed out after ${deadlineMs} ms`), deadlineMs);

function fail(reason) {
  console.error(`FAIL ${reason}`);
  process.exit(1);
}

const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

// Connects with SCRAM; resolves { client, serverFinal, expected } or { refused }.
function scramConnect(clientId, secret) {
  return new Promise((resolve) => {
    const nonce = crypto.randomBytes(18).toString('base64');
    const bare = `n=${user},r=${nonce}`;
    let expected = null;
    const client = mqtt.connect(url, {
      clientId,
      protocolVersion: 5,
      reconnectPeriod: 0,
      connectTimeout: 10000,
      properties: {
        authenticationMethod: METHOD,
        authenticationData: Buffer.from(`n,,${bare}`),
      },
    });
    client.handleAuth = (packet, callback) => {
      const serverFirst = packet.properties.authenticationData.toString();
      const attrs = Object.fromEntries(serverFirst.split(',').map((a) => [a[0], a.slice(2)]));
      if (!attrs.r.startsWith(nonce)) return callback(new Error('server nonce does not extend ours'));
      const salted = crypto.pbkdf2Sync(secret, Buffer.from(attrs.s, 'base64'), Number(attrs.i), 32, 'sha256');
      const clientKey = hmac(salted, 'Client Key');
      const storedKey = crypto.createHash('sha256').update(clientKey).digest();
      const withoutProof = `c=biws,r=${attrs.r}`;
      const authMessage = `${bare},${serverFirst},${withoutProof}`;
      const signature = hmac(storedKey, authMessage);
      const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]));
      expected = `v=${hmac(hmac(salted, 'Server Key'), authMessage).toString('base64')}`;
      callback(null, {
        cmd: 'auth',
        reasonCode: 0x18,
        properties: {
          authenticationMethod: METHOD,
          authenticationData: Buffer.from(`${withoutProof},p=${proof.toString('base64')}`),
        },
      });
    };
    let settled = false;
    const settle = (value) => {
      if (!settled) {
        settled = true;
        resolve(value);
      }
    };
    client.once('connect', (connack) => {
      const props = connack.properties || {};
      settle({ client, method: props.authenticationMethod, serverFinal: props.authenticationData?.toString(), expected });
    });
    client.once('error', (err) => {
      settle({ refused: `error code ${err.code}: ${err.message}` });
      client.end(true);
    });
    client.once('close', () => settle({ refused: 'closed before CONNACK' }));
  });
}

const ok = await scramConnect('mqttjs-scram', password);
if (!ok.client) fail(`refused: ${ok.refused}`);
if (ok.method !== METHOD) fail(`CONNACK method ${ok.method}`);
if (ok.serverFinal !== ok.expected) fail(`server signature ${ok.serverFinal} != ${ok.expected}`);
console.log(`OK connected with ${METHOD}, server signature verified`);
await ok.client.endAsync();

const bad = await scramConnect('mqttjs-scram-bad', `${password}-wrong`);
if (bad.client) fail('wrong password accepted');
console.log(`OK wrong password refused (${bad.refused})`);
clearTimeout(timer);
console.log('DONE');
process.exit(0);
