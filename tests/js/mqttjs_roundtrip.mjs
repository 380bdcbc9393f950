// MQTT.js (npm `mqtt`) from Node: a subscriber and a publisher on the broker URL given in
// BROKER_URL (ws:// or wss://), protocol version MQTT_VERSION (4 = 3.1.1, 5 = 5.0), trusting
// CA_FILE for wss://. Subscribes to iot/sensors/# at QoS 1, publishes a sensor reading at QoS 1
// and a 100 KiB reading at QoS 0 (several WebSocket frames' worth), and checks both arrive
// intact. Prints one `OK ...` line per check; exits non-zero with the reason on any failure.
import fs from 'node:fs';
import mqtt from 'mqtt';

const url = process.env.BROKER_URL;
const version = Number(process.env.MQTT_VERSION || '4');
const deadlineMs = Number(process.env.TIMEOUT_MS || '30000');
const options = {
  protocolVersion: version,
  reconnectPeriod: 0,
  connectTimeout: deadlineMs,
  clean: true,
};
if (process.env.CA_FILE) {
  options.ca = fs.readFileSync(process.env.CA_FILE);
  options.rejectUnauthorized = true;
  options.servername = 'localhost';
}

const timer = setTimeout(() => fail(`timed out after ${deadlineMs} ms`), deadlineMs);

function fail(reason) {
  console.error(`FAIL ${reason}`);
  process.exit(1);
}

function open(clientId) {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { ...options, clientId });
    client.once('connect', (connack) => resolve({ client, connack }));
    client.once('error', (err) => reject(new Error(`${clientId}: ${err.message} (code ${err.code})`)));
    client.once('close', () => reject(new Error(`${clientId}: closed before CONNACK`)));
  });
}

try {
  const { client: sub } = await open(`mqttjs-sub-v${version}`);
  console.log(`OK connected subscriber over ${url} with MQTT version ${version}`);
  const received = [];
  let wake = null;
  sub.on('message', (topic, payload, packet) => {
    received.push({ topic, payload, packet });
    if (wake) wake();
  });
  const granted = await sub.subscribeAsync('iot/sensors/#', { qos: 1 });
  if (granted.length !== 1 || granted[0].qos !== 1) fail(`SUBACK granted ${JSON.stringify(granted)}`);
  console.log('OK subscribed to iot/sensors/# at QoS 1');

  const { client: pub } = await open(`mqttjs-pub-v${version}`);
  const reading = { sensor_id: 'sensor_js', temperature: 25.4, humidity: 60.2, timestamp: Date.now() / 1000 };
  const publishOptions = { qos: 1 };
  if (version === 5) publishOptions.properties = { userProperties: { origin: 'mqttjs' }, contentType: 'application/json' };
  await pub.publishAsync('iot/sensors/temperature', JSON.stringify(reading), publishOptions);
  const big = Buffer.alloc(100 * 1024, 'x');
  await pub.publishAsync('iot/sensors/blob', big, { qos: 0 });

  while (received.length < 2) await new Promise((r) => { wake = r; });
  const [first, second] = received;
  if (first.topic !== 'iot/sensors/temperature') fail(`first message on ${first.topic}`);
  const got = JSON.parse(first.payload.toString());
  if (got.sensor_id !== 'sensor_js' || got.temperature !== 25.4) fail(`payload ${first.payload}`);
  if (first.packet.qos !== 1) fail(`delivered at QoS ${first.packet.qos}`);
  if (version === 5) {
    const props = first.packet.properties || {};
    if (!props.userProperties || props.userProperties.origin !== 'mqttjs') fail(`user properties lost: ${JSON.stringify(props)}`);
    if (props.contentType !== 'application/json') fail(`content type lost: ${JSON.stringify(props)}`);
    console.log('OK v5 properties forwarded');
  }
  console.log(`OK received ${first.topic}: ${first.payload}`);
  if (second.topic !== 'iot/sensors/blob' || !second.payload.equals(big)) fail(`big message: ${second.topic}, ${second.payload.length} bytes`);
  console.log(`OK received ${second.topic}: ${second.payload.length} bytes`);
  await pub.endAsync();
  await sub.endAsync();
  clearTimeout(timer);
  console.log('DONE');
} catch (err) {
  fail(err.message);
}
