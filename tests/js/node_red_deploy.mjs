// Deploys examples/node-red/flow.json into a running Node-RED through its admin API (POST
// /flows, full deployment) with the broker node pointed at MQTT_HOST:MQTT_PORT, then polls the
// flow's GET /sensors/latest until a reading on iot/sensors/temperature has reached the flow.
// Env: NODE_RED_URL (http://127.0.0.1:port), FLOW_FILE, MQTT_HOST, MQTT_PORT, TIMEOUT_MS.
import fs from 'node:fs';

const base = process.env.NODE_RED_URL.replace(/\/$/, '');
const timeout = Number(process.env.TIMEOUT_MS || '60000');
const deadline = Date.now() + timeout;
const flow = JSON.parse(fs.readFileSync(process.env.FLOW_FILE, 'utf8'));

function fail(reason) {
  console.error(`FAIL ${reason}`);
  process.exit(1);
}

const brokers = flow.filter((n) => n.type === 'mqtt-broker');
if (brokers.length !== 1) fail(`expected one mqtt-broker node, found ${brokers.length}`);
brokers[0].broker = process.env.MQTT_HOST;
brokers[0].port = String(process.env.MQTT_PORT);

const deploy = await fetch(`${base}/flows`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'Node-RED-Deployment-Type': 'full', 'Node-RED-API-Version': 'v1' },
  body: JSON.stringify(flow),
});
const deployText = await deploy.text();
if (deploy.status !== 204 && deploy.status !== 200) fail(`POST /flows: HTTP ${deploy.status} ${deployText}`);
console.log(`OK flow deployed (HTTP ${deploy.status})`);

const active = await (await fetch(`${base}/flows`, { headers: { 'Node-RED-API-Version': 'v1' } })).json();
if (!active.some((n) => n.id === 'sensors-in' && n.topic === 'iot/sensors/#')) fail(`deployed flows lack the MQTT-in node: ${JSON.stringify(active)}`);

let last = null;
while (Date.now() < deadline) {
  try {
    const res = await fetch(`${base}/sensors/latest`);
    if (res.status === 200) {
      last = await res.json();
      if (last.topic === 'iot/sensors/temperature' && last.payload && last.payload.sensor_id) {
        console.log(`OK reading reached the flow: ${JSON.stringify(last)}`);
        console.log('DONE');
        process.exit(0);
      }
    } else {
      last = `HTTP ${res.status}`;
    }
  } catch (err) {
    last = err.message;
  }
  await new Promise((r) => setTimeout(r, 250));
}
fail(`no reading reached the flow in ${timeout} ms; last answer: ${JSON.stringify(last)}`);
