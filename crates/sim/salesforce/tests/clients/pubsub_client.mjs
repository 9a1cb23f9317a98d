// Subscribes to /data/OrderChangeEvent with salesforce-pubsub-api-client and prints the first
// change event (decoded by the client) as JSON, then publishes an Order_Shipped__e platform event.
// Prints "SUBSCRIBED" once the stream is open.
// Environment: SIM (https instance URL), TOKEN, GRPC (host:port), USER_ID.
import PubSubApiClient from 'salesforce-pubsub-api-client';

const quiet = { debug() {}, info() {}, warn() {}, error(...a) { process.stderr.write(a.join(' ') + '\n'); } };
const client = new PubSubApiClient({
  authType: 'user-supplied',
  accessToken: process.env.TOKEN,
  instanceUrl: process.env.SIM,
  pubSubEndpoint: process.env.GRPC,
  rejectUnauthorizedSsl: false,
}, quiet);

const timer = setTimeout(() => {
  process.stderr.write('no change event within 60 s\n');
  process.exit(2);
}, 60000);

await client.connect();
let announced = false;
client.subscribe('/data/OrderChangeEvent', (subscription, type, data) => {
  if (type === 'grpcKeepAlive' && !announced) {
    announced = true;
    process.stdout.write('SUBSCRIBED\n');
  } else if (type === 'event') {
    const h = data.payload.ChangeEventHeader;
    const out = {
      replayId: data.replayId,
      schemaId: data.schemaId,
      entityName: h.entityName,
      changeType: h.changeType,
      changeOrigin: h.changeOrigin,
      recordIds: h.recordIds,
      changedFields: h.changedFields,
      nulledFields: h.nulledFields,
      hubStatus: data.payload.Hub_Status__c,
      erpNumber: data.payload.ERP_Order_Number__c,
      lastModified: typeof data.payload.LastModifiedDate,
    };
    process.stdout.write('EVENT ' + JSON.stringify(out) + '\n');
    // Publish a platform event the way the client does it: GetTopic, GetSchema, Publish.
    client.publish('/event/Order_Shipped__e', {
      CreatedDate: Date.now(),
      CreatedById: process.env.USER_ID,
      Order_Number__c: { string: 'ERP-42' },
      Carrier__c: { string: 'UPS' },
    }, 'shipped-1').then((result) => {
      process.stdout.write('PUBLISHED ' + JSON.stringify({
        replayId: result.replayId, correlationKey: result.correlationKey, error: result.error || null,
      }) + '\n');
      clearTimeout(timer);
      client.close();
      process.exit(0);
    }, (e) => {
      process.stderr.write(`publish failed: ${e && e.stack ? e.stack : e}\n`);
      process.exit(4);
    });
  } else if (type === 'error') {
    process.stderr.write(`subscription error: ${data}\n`);
    process.exit(3);
  }
}, 1);
