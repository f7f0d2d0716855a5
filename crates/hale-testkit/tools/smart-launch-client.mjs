// An app doing the SMART App Launch standalone patient launch against Hale with nothing
// but Node.js's own fetch and crypto, independent of Hale's code: it plays the person's
// browser too (signing in with the password and a security code, and allowing the app on
// the consent screen), then is the app (PKCE, the code exchange, reading FHIR data with the
// token). Prints what it found as one line of JSON.
//
//   node smart-launch-client.mjs BASE_URL CLIENT_ID REDIRECT_URI EMAIL PASSWORD CODE
import { createHash, randomBytes } from 'node:crypto'

const [base, clientId, redirectUri, email, password, code] = process.argv.slice(2)
const b64url = (data) => Buffer.from(data).toString('base64url')
const cookies = new Map()

/** A request as a browser makes it: cookies kept, redirects not followed. */
async function browse (url, form) {
  const response = await fetch(url, {
    method: form ? 'POST' : 'GET',
    redirect: 'manual',
    headers: {
      cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
      ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {})
    },
    body: form ? new URLSearchParams(form) : undefined
  })
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(';')
    const at = pair.indexOf('=')
    cookies.set(pair.slice(0, at), pair.slice(at + 1))
  }
  return response
}

const hidden = (html, name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1]

// The person signs in: password, then a security code.
const signIn = await (await browse(`${base}/sign-in`)).text()
await browse(`${base}/sign-in`, { csrf: hidden(signIn, 'csrf'), email, password })
const codePage = await (await browse(`${base}/sign-in/security-code`)).text()
await browse(`${base}/sign-in/security-code`, { csrf: hidden(codePage, 'csrf'), code })

// The app: discovery, PKCE, the authorisation request.
const config = await (await fetch(`${base}/.well-known/smart-configuration`)).json()
const verifier = b64url(randomBytes(32))
const state = b64url(randomBytes(16))
const authorize = new URL(config.authorization_endpoint)
authorize.search = new URLSearchParams({
  response_type: 'code',
  client_id: clientId,
  redirect_uri: redirectUri,
  scope: 'launch/patient openid fhirUser patient/Patient.rs patient/Observation.rs',
  state,
  aud: `${base}/fhir`,
  code_challenge: b64url(createHash('sha256').update(verifier).digest()),
  code_challenge_method: 'S256'
})
// The person allows it on the consent screen, sharing general entries.
const consent = await (await browse(authorize)).text()
const allowed = await browse(`${base}/oauth/authorize`, {
  csrf: hidden(consent, 'csrf'),
  request: hidden(consent, 'request'),
  decision: 'allow',
  labels: 'general'
})
const back = new URL(allowed.headers.get('location'))
if (back.searchParams.get('state') !== state) throw new Error('the state did not come back')

// The app exchanges the code, and reads with the token.
const tokens = await (await fetch(config.token_endpoint, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({
    grant_type: 'authorization_code',
    code: back.searchParams.get('code'),
    redirect_uri: redirectUri,
    client_id: clientId,
    code_verifier: verifier
  })
})).json()
const read = async (path) =>
  (await fetch(`${base}/fhir/${path}`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).json()
const patient = await read(`Patient/${tokens.patient}`)
const observations = await read(`Observation?patient=Patient/${tokens.patient}`)
console.log(JSON.stringify({
  patient: patient.id,
  scope: tokens.scope,
  has_id_token: typeof tokens.id_token === 'string',
  has_refresh_token: typeof tokens.refresh_token === 'string',
  observations: (observations.entry ?? []).map((e) => e.resource.code?.text ?? null)
}))
