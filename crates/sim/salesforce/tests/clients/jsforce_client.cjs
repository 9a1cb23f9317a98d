// Drives jsforce against the simulator and prints what it got back as JSON.
// Environment: SIM, TOKEN, NODE_EXTRA_CA_CERTS, CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD,
// SECURITY_TOKEN, ORG_ID.
const jsforce = require('jsforce');

const out = {};

async function main() {
  const env = process.env;
  const conn = new jsforce.Connection({ instanceUrl: env.SIM, accessToken: env.TOKEN, version: '60.0' });

  const created = await conn.sobject('Account').create({ Name: 'JS Account', ERP_Customer_Number__c: 'JS-1' });
  out.created = created;
  out.retrieved = (await conn.sobject('Account').retrieve(created.id)).Name;
  out.updated = await conn.sobject('Account').update({ Id: created.id, Phone: '555-0142' });
  out.upserts = [
    await conn.sobject('Account').upsert({ Name: 'JS Upserted', ERP_Customer_Number__c: 'JS-2' }, 'ERP_Customer_Number__c'),
    await conn.sobject('Account').upsert({ Name: 'JS Upserted Again', ERP_Customer_Number__c: 'JS-2' }, 'ERP_Customer_Number__c'),
  ];

  const records = [];
  await new Promise((resolve, reject) => {
    conn.query("SELECT Id, Name FROM Account WHERE Name LIKE 'Bulk %'")
      .on('record', (r) => records.push(r))
      .on('end', resolve)
      .on('error', reject)
      .run({ autoFetch: true, maxFetch: 100000 });
  });
  out.query_records = records.length;
  out.query_distinct = new Set(records.map((r) => r.Id)).size;
  const firstPage = await conn.query("SELECT Id FROM Account WHERE Name LIKE 'Bulk %'");
  out.first_page = { totalSize: firstPage.totalSize, done: firstPage.done, records: firstPage.records.length, next: firstPage.nextRecordsUrl };
  out.grouped = (await conn.query("SELECT Name, COUNT(Id) c FROM Account WHERE Name LIKE 'Bulk 0000%' GROUP BY Name ORDER BY Name DESC LIMIT 3")).records.map((r) => [r.Name, r.c]);
  out.created_today = (await conn.query("SELECT COUNT() FROM Account WHERE CreatedDate = TODAY AND Name LIKE 'Bulk %'")).totalSize;

  const made = await conn.sobject('Contact').create(
    [{ LastName: 'JS One', AccountId: created.id }, { LastName: 'JS Two', AccountId: created.id }],
    { allOrNone: true },
  );
  out.collection_create = made;
  out.collection_update = await conn.sobject('Contact').update(made.map((m) => ({ Id: m.id, Email: 'js@example.com' })));
  out.collection_retrieve = (await conn.sobject('Contact').retrieve(made.map((m) => m.id))).map((c) => c.Email);
  out.collection_upsert = await conn.sobject('Account').upsert(
    [{ Name: 'JS Three', ERP_Customer_Number__c: 'JS-3' }, { Name: 'JS Two Renamed', ERP_Customer_Number__c: 'JS-2' }],
    'ERP_Customer_Number__c',
  );
  out.collection_destroy = await conn.sobject('Contact').destroy(made.map((m) => m.id));
  out.identity = await conn.identity();
  out.limitInfo = conn.limitInfo;
  try {
    await conn.sobject('Account').create({ Nope__c: 1 });
    out.bad_field = null;
  } catch (e) {
    out.bad_field = e.errorCode || e.name;
  }

  // Password grant through the OAuth token endpoint.
  const oauth2 = new jsforce.OAuth2({ loginUrl: env.SIM, clientId: env.CLIENT_ID, clientSecret: env.CLIENT_SECRET });
  const pw = new jsforce.Connection({ oauth2, version: '60.0' });
  const userInfo = await pw.login(env.USERNAME, env.PASSWORD + env.SECURITY_TOKEN);
  out.password_login = { organizationId: userInfo.organizationId, id: userInfo.id, instanceUrl: pw.instanceUrl, hasRefresh: !!pw.refreshToken };
  out.password_query = (await pw.query('SELECT Id FROM Organization')).totalSize;

  // A stale access token plus a refresh token: jsforce refreshes on the 401 and retries.
  const stale = new jsforce.Connection({
    oauth2, instanceUrl: env.SIM, version: '60.0',
    accessToken: env.ORG_ID.substring(0, 15) + '!stale', refreshToken: env.REFRESH_TOKEN,
  });
  let refreshed = null;
  stale.on('refresh', (token) => { refreshed = token; });
  out.refresh_query = (await stale.query('SELECT Id FROM User')).totalSize;
  out.refreshed = refreshed !== null && refreshed !== env.TOKEN;

  // SOAP login (no OAuth app).
  const soap = new jsforce.Connection({ loginUrl: env.SIM, version: '60.0' });
  const soapInfo = await soap.login(env.USERNAME, env.PASSWORD + env.SECURITY_TOKEN);
  out.soap_login = { organizationId: soapInfo.organizationId, instanceUrl: soap.instanceUrl };

  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write(`jsforce client failed: ${e && e.stack ? e.stack : e}\nso far: ${JSON.stringify(out)}\n`);
  process.exit(1);
});
