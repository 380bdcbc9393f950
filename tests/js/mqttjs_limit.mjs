// max_connections on a WebSocket listener, seen by MQTT.js: LIMIT clients connect (MQTT 5.0),
// one more MQTT 5.0 client and one more 3.1.1 client are refused (CONNACK 0x97 "quota exceeded"
// or the connection closed), the clients already connected still exchange a message, and once
// one of them leaves a new client gets its slot. Env: BROKER_URL, LIMIT. Prints `OK ...` lines.
import mqtt from 'mqtt';

const url = process.env.BROKER_URL;
const limit = Number(process.env.LIMIT || '2');
const deadlineMs = Number(process.env.TIMEOUT_MS || '30000');
const timer = setTimeout(() => fail(`timed out after ${deadlineMs} ms`), deadlineMs);

function fail(reason) {
  console.error(`FAIL ${reason}`);
  process.exit(1);
}

// Resolves { client } on CONNACK success, { refused } on an error/close before it.
function attempt(clientId, protocolVersion) {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, { clientId, protocolVersion, reconnectPeriod: 0, connectTimeout: 10000 });
    let settled = false;
    const settle = (value) => {
      if (!settled) {
        settled = true;
        resolve(value);
      }
    };
    client.once('connect', () => settle({ client }));
    client.once('error', (err) => {
      settle({ refused: `error code ${err.code}: ${err.message}` });
      client.end(true);
    });
    client.once('close', () => settle({ refused: 'closed before CONNACK' }));
  });
}

const live = [];
for (let i = 0; i < limit; i++) {
  const { client, refused } = await attempt(`limit-${i}`, 5);
  if (!client) fail(`client ${i} of ${limit} refused: ${refused}`);
  live.push(client);
}
console.log(`OK ${limit} clients connected`);

for (const version of [5, 4]) {
  const { client, refused } = await attempt(`over-limit-v${version}`, version);
  if (client) fail(`client over the limit accepted (MQTT version ${version})`);
  if (version === 5 && refused.startsWith('error code') && !refused.startsWith('error code 151')) {
    fail(`v5 client refused with the wrong reason: ${refused}`);
  }
  console.log(`OK over-limit client (MQTT version ${version}) refused: ${refused}`);
}

const [sub, pub] = live;
if (!live.every((c) => c.connected)) fail('an existing client lost its connection');
const arrived = new Promise((resolve) => sub.once('message', (topic, payload) => resolve([topic, payload.toString()])));
await sub.subscribeAsync('iot/sensors/#', { qos: 1 });
await pub.publishAsync('iot/sensors/temperature', '{"temperature": 25.4}', { qos: 1 });
const [topic, payload] = await arrived;
if (topic !== 'iot/sensors/temperature' || payload !== '{"temperature": 25.4}') fail(`got ${topic}: ${payload}`);
console.log('OK existing clients unaffected: message delivered');

await live.pop().endAsync();
// The slot is released when the broker sees the close: retry for a while rather than sleep.
let replacement = null;
for (let tries = 0; tries < 50 && !replacement; tries++) {
  const { client } = await attempt(`replacement-${tries}`, 5);
  if (client) replacement = client;
  else await new Promise((r) => setTimeout(r, 200));
}
if (!replacement) fail('no slot after a client left');
console.log('OK a client that left frees its slot');

await replacement.endAsync();
for (const c of live) await c.endAsync();
clearTimeout(timer);
console.log('DONE');
