// An organisation's system doing SMART Backend Services against Hale with nothing but
// Node.js's own crypto and fetch: independent of Hale's code, it shows the flow works for a
// client written elsewhere. Prints what it found as one line of JSON.
//
//   node backend-services-client.mjs BASE_URL CLIENT_ID PRIVATE_KEY_PEM KID NHS_NUMBER
import { createPrivateKey, randomUUID, sign } from "node:crypto";
import { readFileSync } from "node:fs";

const [base, clientId, keyFile, kid, nhsNumber] = process.argv.slice(2);
const b64url = (data) => Buffer.from(data).toString("base64url");

async function json(response) {
  const body = await response.json();
  if (!response.ok) {
    throw new Error(`${response.status}: ${JSON.stringify(body)}`);
  }
  return body;
}

// 1. Discover the token endpoint.
const config = await json(await fetch(`${base}/.well-known/smart-configuration`));
const tokenUrl = config.token_endpoint;

// 2. Sign a client assertion (RS384) and exchange it for an access token.
const now = Math.floor(Date.now() / 1000);
const header = b64url(JSON.stringify({ alg: "RS384", typ: "JWT", kid }));
const claims = b64url(
  JSON.stringify({ iss: clientId, sub: clientId, aud: tokenUrl, exp: now + 240, jti: randomUUID() }),
);
const key = createPrivateKey(readFileSync(keyFile));
const signature = sign("sha384", Buffer.from(`${header}.${claims}`), key);
const token = await json(
  await fetch(tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      scope: "system/Patient.rs system/Observation.rs",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: `${header}.${claims}.${b64url(signature)}`,
    }),
  }),
);

// 3. Find the person by NHS number, then read their observations.
const fhir = async (path) =>
  json(await fetch(`${base}/fhir/${path}`, { headers: { authorization: `Bearer ${token.access_token}` } }));
const patients = await fhir(`Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|${nhsNumber}`);
const patientId = patients.entry?.[0]?.resource?.id;
const observations = patientId ? await fhir(`Observation?patient=Patient/${patientId}`) : { entry: [] };
console.log(
  JSON.stringify({
    expires_in: token.expires_in,
    scope: token.scope,
    patient: patientId ?? null,
    observations: (observations.entry ?? []).map((e) => e.resource.code?.text ?? null),
  }),
);
