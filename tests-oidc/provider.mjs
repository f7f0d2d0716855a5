// A real OpenID Connect provider (oidc-provider) on loopback, set up like NHS login, for
// Hale's sign-in tests: Hale authenticates with private_key_jwt (ES256), ID tokens are
// signed RS512 and carry `vot` and `identity_proofing_level`, and the profile gives the NHS
// number. The person signs in at once (no pages): the test drives Hale, not the provider.
//
// A correct provider never sends a bad token, so a thin layer over its token endpoint can
// spoil the ID token it just issued, for the tests of Hale's refusals: re-signed with a key
// nobody published, another issuer or audience, expired, or the previous sign-in's token.
//
//   node provider.mjs   → prints its issuer URL, then waits for POST /test/setup
//
// Control endpoints (loopback test use only):
//   POST /test/setup  {client_id, redirect_uri, jwks}  registers Hale and starts the provider
//   POST /test/person {…claims}                        who signs in next
//   POST /test/mode   {mode}                           honest | bad-signature | wrong-issuer |
//                                                      wrong-audience | expired | replay
import { createServer } from 'node:http'
import { generateKeyPairSync, sign } from 'node:crypto'
import Provider from 'oidc-provider'

const KID = 'provider-1'
const signing = generateKeyPairSync('rsa', { modulusLength: 2048 })
const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 })
const publicJwk = { ...signing.privateKey.export({ format: 'jwk' }), kid: KID, alg: 'RS512', use: 'sig' }

let provider = null
let issuer = ''
let mode = 'honest'
let lastIdToken = null
let person = {}

const b64url = (data) => Buffer.from(data).toString('base64url')

/** The ID token re-made with `change` applied to its claims, signed with `key`. */
function remade(idToken, change, key = signing.privateKey) {
  const [header, payload] = idToken.split('.')
  const claims = change(JSON.parse(Buffer.from(payload, 'base64url')))
  const body = `${header}.${b64url(JSON.stringify(claims))}`
  return `${body}.${b64url(sign('sha512', Buffer.from(body), key))}`
}

function spoil(idToken) {
  const now = Math.floor(Date.now() / 1000)
  switch (mode) {
    case 'bad-signature':
      return remade(idToken, (c) => c, stranger.privateKey)
    case 'wrong-issuer':
      return remade(idToken, (c) => ({ ...c, iss: 'http://127.0.0.1:1/not-the-provider' }))
    case 'wrong-audience':
      return remade(idToken, (c) => ({ ...c, aud: 'another-client' }))
    case 'expired':
      return remade(idToken, (c) => ({ ...c, iat: now - 7200, exp: now - 3600 }))
    case 'replay':
      return lastIdToken ?? idToken
    default:
      lastIdToken = idToken
      return idToken
  }
}

function setUp({ client_id, redirect_uri, jwks }) {
  provider = new Provider(issuer, {
    clients: [{
      client_id,
      redirect_uris: [redirect_uri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      id_token_signed_response_alg: 'RS512',
      jwks,
    }],
    jwks: { keys: [publicJwk] },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS512', 'RS256'],
      clientAuthSigningAlgValues: ['ES256', 'RS512'],
    },
    // Claims of the scopes asked for go in the ID token as well as userinfo.
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub', 'vot', 'identity_proofing_level'],
      email: ['email', 'email_verified'],
      profile: ['given_name', 'family_name', 'birthdate', 'nhs_number'],
    },
    extraParams: ['vtr'],
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: async (ctx, id) => ({
      accountId: id,
      claims: async () => ({ ...person, sub: id }),
    }),
    cookies: { keys: ['loopback-test-only'] },
  })
  provider.use(async (ctx, next) => {
    await next()
    if (ctx.path === '/token' && ctx.body && typeof ctx.body.id_token === 'string') {
      ctx.body = { ...ctx.body, id_token: spoil(ctx.body.id_token) }
    }
  })
}

/** The person signs in and agrees at once. */
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res)
  const accountId = person.sub ?? 'person-1'
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id })
  grant.addOIDCScope(details.params.scope)
  const grantId = await grant.save()
  await provider.interactionFinished(req, res,
    { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false })
}

function body(req) {
  return new Promise((resolve, reject) => {
    let text = ''
    req.on('data', (chunk) => { text += chunk })
    req.on('end', () => { try { resolve(JSON.parse(text || '{}')) } catch (e) { reject(e) } })
  })
}

const server = createServer(async (req, res) => {
  try {
    const path = new URL(req.url, issuer).pathname
    if (req.method === 'POST' && path.startsWith('/test/')) {
      const given = await body(req)
      if (path === '/test/setup') setUp(given)
      else if (path === '/test/person') person = given
      else if (path === '/test/mode') mode = given.mode
      res.writeHead(204).end()
    } else if (!provider) {
      res.writeHead(503).end('not set up')
    } else if (path.startsWith('/interaction/')) {
      await interaction(req, res)
    } else {
      provider.callback()(req, res)
    }
  } catch (e) {
    res.writeHead(500).end(String(e))
  }
})

server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`
  console.log(issuer)
})
