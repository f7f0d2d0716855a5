// Hale's web app in a real browser: Debian's Chromium, driven by playwright-core (no
// browser download). Checks what a person would notice: accessibility (axe-core, WCAG 2.2
// AA), journeys done with the keyboard alone, the same journeys with JavaScript off, no
// sideways scrolling on a 320 px screen. Screenshots of every page go to artifacts/.
//
//   HALE_BIN=../target/debug/hale npm test

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import crypto from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { chromium } from 'playwright-core'

const require = createRequire(import.meta.url)
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')
const HERE = path.dirname(new URL(import.meta.url).pathname)
const BIN = process.env.HALE_BIN ?? path.join(HERE, '..', 'target', 'debug', 'hale')
const ARTIFACTS = path.join(HERE, 'artifacts')
const PASSWORD = 'walrus lantern orchard 42'

let server
let base
let dataDir
let browser
let demoCodes = []

before(async () => {
  // Only this run's screenshots: a stale one could be mistaken for the current page.
  fs.rmSync(ARTIFACTS, { recursive: true, force: true })
  fs.mkdirSync(ARTIFACTS, { recursive: true })
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hale-browser-'))
  const env = { ...process.env }
  delete env.HALE_KEY
  delete env.HALE_SMTP_URL
  // Pages are opened at localhost, a domain name, as passkeys (WebAuthn) need one; Hale
  // listens on the loopback address behind it. A free port is found first.
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
  // --demo adds Sam Demo, with a year of synthetic record, beside the people tests make.
  server = spawn(BIN, ['serve', '--demo', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`,
    '--public-url', `http://localhost:${port}`], { env })
  base = await new Promise((resolve, reject) => {
    let out = ''
    server.stdout.on('data', (chunk) => {
      out += chunk
      if (/running at http:\/\/[0-9.:]+\//.test(out)) {
        demoCodes = [...out.matchAll(/^ {4}([a-z0-9]{5}-[a-z0-9]{5})$/gm)].map((x) => x[1])
        resolve(`http://localhost:${port}`)
      }
    })
    server.on('exit', (code) => reject(new Error(`hale exited with ${code}`)))
    setTimeout(() => reject(new Error('hale did not start within 20 s')), 20000)
  })
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  })
})

after(async () => {
  await browser?.close()
  server?.kill()
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

// --- helpers -------------------------------------------------------------------------

/** The newest email Hale wrote to its outbox (no SMTP server is configured here). */
function newestEmail () {
  const dir = path.join(dataDir, 'outbox')
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.eml')).sort()
  return fs.readFileSync(path.join(dir, files[files.length - 1]), 'utf8')
}

function linkIn (email, page = 'verify-email') {
  const m = email.match(new RegExp(`http://\\S+/account/${page}\\?token=\\S+`))
  assert.ok(m, `the email holds a ${page} link`)
  return m[0]
}

/** RFC 6238 code for a base32 key as shown on the set-up page, `offset` steps ahead. */
function totp (typedKey, offset = 0) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  const clean = typedKey.replace(/\s+/g, '').toUpperCase().replace(/=+$/, '')
  let bits = ''
  for (const c of clean) bits += alphabet.indexOf(c).toString(2).padStart(5, '0')
  const bytes = []
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2))
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30) + offset))
  const mac = crypto.createHmac('sha1', Buffer.from(bytes)).update(counter).digest()
  const o = mac[mac.length - 1] & 0xf
  const n = ((mac[o] & 0x7f) << 24) | (mac[o + 1] << 16) | (mac[o + 2] << 8) | mac[o + 3]
  return String(n % 1000000).padStart(6, '0')
}

let screenshotCount = 0

/** Runs axe (WCAG 2.0/2.1/2.2 A and AA) and the 320 px check, and saves screenshots. */
async function check (page, name) {
  await page.evaluate(AXE)
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } }))
  const problems = result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)
  assert.deepEqual(problems, [], `${name}: accessibility violations`)
  const n = String(++screenshotCount).padStart(2, '0')
  await page.screenshot({ path: path.join(ARTIFACTS, `${n}-${name}.png`), fullPage: true })
  const size = page.viewportSize()
  await page.setViewportSize({ width: 320, height: 640 })
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
  assert.ok(overflow <= 0, `${name}: ${overflow} px of sideways scrolling at 320 px wide`)
  await page.screenshot({ path: path.join(ARTIFACTS, `${n}-${name}-320.png`), fullPage: true })
  await page.setViewportSize(size)
}

async function heading (page) {
  return (await page.locator('h1').textContent()).trim()
}

/** Presses Tab until the element matching `selector` has focus; fails after 40 presses. */
async function tabTo (page, selector) {
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab')
    const here = await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)
    if (here) return
  }
  assert.fail(`could not reach ${selector} with the Tab key on ${page.url()}`)
}

/** Presses Enter and waits for the page it leads to (even at the same address). */
async function pressEnterAndLoad (page) {
  await Promise.all([page.waitForEvent('framenavigated'), page.keyboard.press('Enter')])
  await page.waitForLoadState('load')
}

/** Clicks the form's submit button and waits for the page it leads to. */
async function submitForm (page) {
  await Promise.all([page.waitForEvent('framenavigated'), page.click('main button[type=submit]')])
  await page.waitForLoadState('load')
}

/** Fills a field and moves on, with the keyboard only. */
async function typeInto (page, selector, text) {
  await tabTo(page, selector)
  await page.keyboard.type(text)
}

/** Sign up, confirm the email, sign in and set up an authenticator, using the keyboard
 * only. Returns the authenticator key. */
async function keyboardJourney (page, email) {
  await page.goto(base + '/')
  await tabTo(page, 'a[href="/sign-up"].nhsuk-button')
  await Promise.all([page.waitForURL('**/sign-up'), page.keyboard.press('Enter')])
  await typeInto(page, '#name', 'Sam Example')
  await typeInto(page, '#email', email)
  await typeInto(page, '#password', PASSWORD)
  await typeInto(page, '#confirm', PASSWORD)
  await Promise.all([page.waitForURL('**/sign-up/check-email'), page.keyboard.press('Enter')])
  assert.equal(await heading(page), 'Check your email')

  await page.goto(linkIn(newestEmail()))
  assert.equal(await heading(page), 'Email address confirmed')
  await tabTo(page, 'main a[href="/sign-in"]')
  await Promise.all([page.waitForURL('**/sign-in'), page.keyboard.press('Enter')])
  await typeInto(page, '#email', email)
  await typeInto(page, '#password', PASSWORD)
  await Promise.all([page.waitForURL('**/account/authenticator'), page.keyboard.press('Enter')])

  // "I cannot scan the QR code" opens with the keyboard and shows the key.
  await tabTo(page, 'summary.nhsuk-details__summary')
  await page.keyboard.press('Enter')
  const key = (await page.locator('.hale-secret code').textContent()).trim()
  await typeInto(page, '#code', totp(key))
  await pressEnterAndLoad(page)
  assert.equal(await heading(page), 'Save your recovery codes')
  await tabTo(page, 'a[href="/record"].nhsuk-button')
  await Promise.all([page.waitForURL('**/record'), page.keyboard.press('Enter')])
  assert.equal(await heading(page), 'Your record')
  return key
}

// --- tests ---------------------------------------------------------------------------

test('every page, empty, filled and with errors, passes axe and fits 320 px', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  const email = 'axe@example.org'

  await page.goto(base + '/')
  await check(page, 'start')
  await page.goto(base + '/sign-up')
  await check(page, 'sign-up')
  await submitForm(page)
  await check(page, 'sign-up-errors')
  await page.fill('#name', 'Axe Example')
  await page.fill('#email', email)
  await page.fill('#password', PASSWORD)
  await page.fill('#confirm', PASSWORD)
  await check(page, 'sign-up-filled')
  await submitForm(page)
  await check(page, 'check-email')
  await page.goto(linkIn(newestEmail()))
  await check(page, 'email-confirmed')
  await page.goto(base + '/account/verify-email?token=made-up')
  await check(page, 'link-invalid')

  await page.goto(base + '/sign-in')
  await check(page, 'sign-in')
  await page.fill('#email', email)
  await page.fill('#password', 'not my password at all')
  await submitForm(page)
  await check(page, 'sign-in-errors')
  await page.fill('#password', PASSWORD)
  await submitForm(page)
  await check(page, 'authenticator')
  await page.fill('#code', '000000')
  await submitForm(page)
  await check(page, 'authenticator-errors')
  await page.click('summary')
  const key = (await page.locator('.hale-secret code').textContent()).trim()
  await page.fill('#code', totp(key))
  await submitForm(page)
  await check(page, 'recovery-codes')
  await page.goto(base + '/record')
  await check(page, 'record')
  await page.goto(base + '/account/sessions')
  await check(page, 'sessions')
  await page.goto(base + '/account')
  await check(page, 'account')
  await page.goto(base + '/account/confirm?next=password')
  await check(page, 'confirm')
  await page.goto(base + '/account/password')
  await check(page, 'change-password')
  await page.goto(base + '/account/email')
  await check(page, 'change-email')
  await page.goto(base + '/record/export')
  await check(page, 'export')
  await page.goto(base + '/account/delete')
  await check(page, 'delete-account')

  // The record: add a measurement (empty, with errors, filled), see the entry, the list
  // and the chart.
  await page.goto(base + '/record/measurements/add')
  await check(page, 'add-measurement')
  await submitForm(page)
  await check(page, 'add-measurement-errors')
  await page.check('#kind')
  await submitForm(page)
  await check(page, 'add-blood-pressure')
  await page.fill('#systolic', '80')
  await page.fill('#diastolic', '120')
  await submitForm(page)
  await check(page, 'add-blood-pressure-errors')
  await page.fill('#systolic', '131')
  await page.fill('#diastolic', '84')
  await check(page, 'add-blood-pressure-filled')
  await submitForm(page)
  assert.match(await page.textContent('main'), /131\/84 mmHg/)
  await check(page, 'entry')
  const entryAddress = page.url().split('?')[0]
  await page.goto(entryAddress + '/edit')
  await check(page, 'change-reading')
  await page.goto(entryAddress + '/delete')
  await check(page, 'confirm-delete')
  await page.goto(base + '/record/measurements')
  await check(page, 'measurements')
  await page.goto(base + '/record/conditions')
  await check(page, 'conditions-empty')
  await page.goto(base + '/record/measurements/blood-pressure')
  await check(page, 'chart')
  await page.goto(base + '/record/add')
  await check(page, 'add')
  await page.goto(base + '/record/add/symptom')
  await check(page, 'add-symptom')
  await submitForm(page)
  await check(page, 'add-symptom-errors')
  await page.fill('#what', 'Headache')
  await page.check('#severity-moderate')
  await page.fill('#notes', 'Worse in the evening')
  await submitForm(page)
  assert.equal(await heading(page), 'Headache')
  await page.goto(page.url().split('?')[0] + '/label')
  await check(page, 'entry-label')
  await page.check('#label-mental-health')
  await submitForm(page)
  assert.match(await page.textContent('main'), /Mental health\. Only you/)
  await check(page, 'entry-labelled')
  await submitForm(page)
  await check(page, 'entry-note-errors')
  await page.fill('#note', 'Ask about this at the next appointment')
  await submitForm(page)
  assert.match(await page.textContent('main'), /Your note has been saved/)
  await check(page, 'entry-noted')
  await page.click('text=Change this symptom')
  await page.waitForLoadState('load')
  assert.equal(await heading(page), 'Change this symptom')
  await check(page, 'change-entry')
  await page.fill('#what', '')
  await submitForm(page)
  await check(page, 'change-entry-errors')
  await page.fill('#what', 'Migraine')
  await submitForm(page)
  assert.equal(await heading(page), 'Migraine')
  assert.match(await page.textContent('main'), /Your changes have been saved/)
  await page.goto(base + '/record/add/diary')
  await check(page, 'add-diary')
  await page.goto(base + '/record/add/document')
  await check(page, 'add-document')
  await submitForm(page)
  await check(page, 'add-document-errors')
  await page.goto(base + '/record/import')
  await check(page, 'import')
  await submitForm(page)
  await check(page, 'import-errors')
  await page.setInputFiles('#file', { name: 'photo.png', mimeType: 'image/png', buffer: Buffer.from('\x89PNG\r\n\x1a\n0000') })
  await submitForm(page)
  await page.waitForFunction(() => !document.querySelector('[data-poll]'), null, { timeout: 30000 })
  assert.equal(await heading(page), 'Your data could not be added')
  await check(page, 'import-failed')
  await page.goto(base + '/record/import')
  await page.setInputFiles('#file', path.join(HERE, '..', 'crates', 'hale-import', 'tests', 'data', 'fit', 'WeightScaleMultiUser.fit'))
  await submitForm(page)
  await page.waitForFunction(() => !document.querySelector('[data-poll]'), null, { timeout: 30000 })
  assert.equal(await heading(page), 'Your data has been added')
  await check(page, 'import-done')
  await page.goto(base + '/record/wellbeing')
  await check(page, 'wellbeing')
  await page.goto(base + '/record/who-has-looked?all=1')
  await check(page, 'who-has-looked')
  await page.goto(base + '/record/export')
  assert.match(await page.textContent('main'), /Download your readings/)
  await check(page, 'export-with-readings')
  await page.goto(base + '/record/wellbeing/steps')
  await check(page, 'steps-empty')
  await page.goto(base + '/no-such-page')
  await check(page, 'not-found')

  // Forgotten password: ask, follow the link, refuse a mismatch, then change it.
  await page.goto(base + '/sign-in/forgot-password')
  await check(page, 'forgot-password')
  await page.fill('#email', email)
  await submitForm(page)
  await check(page, 'forgot-password-sent')
  await page.goto(linkIn(newestEmail(), 'reset-password'))
  await check(page, 'reset-password')
  await page.fill('#password', PASSWORD)
  await page.fill('#confirm', 'something else')
  await submitForm(page)
  await check(page, 'reset-password-errors')
  await page.fill('#password', PASSWORD)
  await page.fill('#confirm', PASSWORD)
  await submitForm(page)
  assert.equal(await heading(page), 'Your password has been changed')
  await check(page, 'reset-password-done')

  // The second-factor pages, in a second browser.
  const other = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
  await other.goto(base + '/sign-in')
  await other.fill('#email', email)
  await other.fill('#password', PASSWORD)
  await submitForm(other)
  await check(other, 'security-code')
  await other.fill('#code', '000000')
  await submitForm(other)
  await check(other, 'security-code-errors')
  await other.goto(base + '/sign-in/recovery-code')
  await check(other, 'recovery-code')
  await other.fill('#code', 'aaaaa-bbbbb')
  await submitForm(other)
  await check(other, 'recovery-code-errors')
  // Wrong codes, one after another, until Hale makes us wait (it must within a dozen).
  for (let i = 0; i < 12 && (await heading(other)) !== 'Too many attempts'; i++) {
    await other.goto(base + '/sign-in/security-code')
    await other.fill('#code', '000000')
    await submitForm(other)
  }
  assert.equal(await heading(other), 'Too many attempts')
  await check(other, 'too-many-attempts')
  await context.close()
})

/** Signs up, confirms the email, signs in and sets up an authenticator (mouse and fills). */
async function signUp (page, email, name) {
  await page.goto(base + '/sign-up')
  await page.fill('#name', name)
  await page.fill('#email', email)
  await page.fill('#password', PASSWORD)
  await page.fill('#confirm', PASSWORD)
  await submitForm(page)
  await page.goto(linkIn(newestEmail()))
  await page.goto(base + '/sign-in')
  await page.fill('#email', email)
  await page.fill('#password', PASSWORD)
  await submitForm(page)
  await page.click('summary')
  const key = (await page.locator('.hale-secret code').textContent()).trim()
  await page.fill('#code', totp(key))
  await submitForm(page)
}

test('sharing: giving access, accepting it, looking for someone, and access ending', async () => {
  const owner = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
  await signUp(owner, 'sharer@example.org', 'Pat Sharer')
  await owner.goto(base + '/record/sharing')
  await check(owner, 'sharing-empty')
  await owner.goto(base + '/record/sharing/new')
  await check(owner, 'give-access')
  await owner.uncheck('#labels')
  await submitForm(owner)
  await check(owner, 'give-access-errors')
  await owner.fill('#name', 'Robin Carer')
  await owner.fill('#email', 'robin@example.org')
  await owner.check('#role')
  await owner.check('#labels')
  await owner.check('#access-write')
  await check(owner, 'give-access-filled')
  await submitForm(owner)
  assert.match(await owner.textContent('main'), /Invited\. They have not accepted yet/)
  await check(owner, 'sharing-invited')
  const invitation = newestEmail()
  const accept = invitation.match(/http:\/\/\S+\/shared-with-me\/accept\?token=\S+/)[0]

  const carer = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
  await carer.goto(accept)
  await check(carer, 'accept-signed-out')
  await signUp(carer, 'robin@example.org', 'Robin Carer')
  await carer.goto(accept)
  await check(carer, 'accept')
  await submitForm(carer)
  assert.equal(await heading(carer), 'Records shared with you')
  await check(carer, 'shared-with-me')
  await submitForm(carer)
  assert.equal(await heading(carer), "Pat Sharer's record")
  assert.match(await carer.textContent('body'), /You are looking at someone else's record/)
  await check(carer, 'record-acting')
  await carer.goto(base + '/record/add/symptom')
  await carer.fill('#what', 'Dizzy spells')
  await carer.check('#severity')
  await submitForm(carer)
  assert.equal(await heading(carer), 'Dizzy spells')
  await check(carer, 'entry-acting')

  await owner.goto(base + '/record/sharing')
  await check(owner, 'sharing-active')
  await owner.goto(base + '/record/who-has-looked')
  assert.match(await owner.textContent('main'), /Robin Carer \(carer\)/)
  await owner.goto(base + '/record/sharing')
  await owner.click('main form button')
  await owner.waitForLoadState('load')
  assert.match(await owner.textContent('main'), /Access taken back/)
  await check(owner, 'sharing-revoked')

  await carer.goto(base + '/record')
  assert.equal(await heading(carer), 'Your access has ended')
  await check(carer, 'access-ended')
  await carer.goto(base + '/record')
  assert.equal(await heading(carer), 'Your record')

  // The emergency summary, a link to it with a passcode, and what its holder sees.
  await owner.goto(base + '/record/add/allergy')
  await owner.fill('#what', 'Penicillin')
  await submitForm(owner)
  await owner.goto(base + '/record/emergency')
  assert.match(await owner.textContent('main'), /Penicillin/)
  await check(owner, 'emergency-summary')
  await owner.click('main a.nhsuk-button')
  await owner.waitForLoadState('load')
  await check(owner, 'share-link')
  await owner.fill('#passcode', 'abc')
  await submitForm(owner)
  await check(owner, 'share-link-errors')
  await owner.fill('#name', 'Walk-in centre')
  await owner.fill('#passcode', 'tulip-42')
  await submitForm(owner)
  assert.equal(await heading(owner), 'Your share link')
  await check(owner, 'share-link-made')
  const address = (await owner.locator('.hale-secret code').textContent()).trim()
  const stranger = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
  await stranger.goto(address)
  await check(stranger, 'share-link-passcode')
  await stranger.fill('#passcode', 'not it')
  await submitForm(stranger)
  await check(stranger, 'share-link-passcode-wrong')
  await stranger.fill('#passcode', 'tulip-42')
  await submitForm(stranger)
  assert.equal(await heading(stranger), 'Emergency summary')
  assert.match(await stranger.textContent('main'), /Penicillin/)
  await check(stranger, 'share-link-view')
  await owner.goto(base + '/record/sharing')
  await check(owner, 'sharing-with-link')

  // An app asks to connect: the consent screen, empty and with an error, then connected.
  const cliEnv = { ...process.env }
  delete cliEnv.HALE_KEY
  const made = spawnSync(BIN, ['admin', 'client', 'create', '--data-dir', dataDir, '--name', 'Step Counter',
    '--redirect-uri', base + '/app-callback', '--public'], { encoding: 'utf8', env: cliEnv })
  assert.equal(made.status, 0, made.stderr)
  const clientId = made.stdout.trim()
  const authorize = base + '/oauth/authorize?' + new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: base + '/app-callback', state: 'abc',
    scope: 'launch/patient patient/Observation.rs offline_access', aud: base + '/fhir',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
  })
  await owner.goto(authorize)
  assert.equal(await heading(owner), 'Connect Step Counter to your record?')
  await check(owner, 'connect-app')
  await owner.uncheck('#labels')
  await owner.click('button[value=allow]')
  await owner.waitForLoadState('load')
  await check(owner, 'connect-app-errors')
  await owner.check('#labels')
  await Promise.all([owner.waitForURL('**/app-callback?**'), owner.click('button[value=allow]')])
  assert.ok(new URL(owner.url()).searchParams.get('code'))
  await owner.goto(base + '/record/sharing')
  assert.match(await owner.textContent('main'), /Disconnect Step Counter/)
  await check(owner, 'sharing-with-app')

  // A GP surgery registered by the operator is given access to general entries.
  const org = spawnSync(BIN, ['admin', 'org', 'create', '--data-dir', dataDir, '--name', 'Riverside Surgery'],
    { encoding: 'utf8', env: cliEnv })
  assert.equal(org.status, 0, org.stderr)
  await owner.goto(base + '/record/sharing/organisation')
  assert.equal(await heading(owner), 'Give an organisation access')
  await check(owner, 'give-organisation')
  await submitForm(owner)
  assert.match(await owner.textContent('.nhsuk-error-summary'), /Select an organisation from the list/)
  await check(owner, 'give-organisation-errors')
  await owner.check('#org')
  await owner.check('#labels')
  await submitForm(owner)
  assert.match(await owner.textContent('main'), /Access given/)
  assert.match(await owner.textContent('main'), /Riverside Surgery/)
  await check(owner, 'sharing-with-organisation')

  // A professional the person shares with writes a clinical note.
  await owner.goto(base + '/record/sharing/new')
  await owner.fill('#name', 'Dr Priya Patel')
  await owner.fill('#email', 'gp@example.org')
  await owner.check('#role-professional')
  await owner.check('#access-write')
  await submitForm(owner)
  const gpInvite = newestEmail().match(/http:\/\/\S+\/shared-with-me\/accept\?token=\S+/)[0]
  const gp = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage()
  await signUp(gp, 'gp@example.org', 'Priya Patel')
  await gp.goto(gpInvite)
  await submitForm(gp)
  await submitForm(gp)
  await gp.goto(base + '/record/add/clinical-note')
  await check(gp, 'clinical-note')
  await submitForm(gp)
  await check(gp, 'clinical-note-errors')
  await gp.fill('#title', 'Asthma review')
  await gp.fill('#note', 'Inhaler technique good.')
  await submitForm(gp)
  assert.equal(await heading(gp), 'Letters and documents')
  await stranger.goto(base + '/s/no-such-link')
  await check(stranger, 'share-link-gone')
})

test('keyboard only: sign up, confirm the email, sign in, set up the authenticator, see the record', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  const key = await keyboardJourney(page, 'keys@example.org')
  // Sign out from the header, then back in with a code, still by keyboard.
  await tabTo(page, 'button.nhsuk-header__account-button')
  await Promise.all([page.waitForURL(base + '/'), page.keyboard.press('Enter')])
  await page.goto(base + '/sign-in')
  await typeInto(page, '#email', 'keys@example.org')
  await typeInto(page, '#password', PASSWORD)
  await Promise.all([page.waitForURL('**/security-code'), page.keyboard.press('Enter')])
  await typeInto(page, '#code', totp(key, 1))
  await Promise.all([page.waitForURL('**/record'), page.keyboard.press('Enter')])
  assert.equal(await heading(page), 'Your record')
  await context.close()
})

test('with JavaScript on, a passkey is added and then used instead of a security code', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  // Chromium's virtual authenticator: a platform authenticator that verifies the person.
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable')
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  })
  await signUp(page, 'passkey@example.org', 'Kit Passkey')
  await page.goto(base + '/account')
  assert.match(await page.textContent('main'), /Passkeys\s+None yet/)
  await page.goto(base + '/account/passkeys')
  assert.equal(await heading(page), 'Passkeys')
  await check(page, 'passkeys')
  await submitForm(page)
  await check(page, 'passkeys-errors')
  await page.fill('#name', 'This computer')
  await submitForm(page)
  assert.match(await page.textContent('main'), /Your passkey has been added/, await page.content())
  assert.match(await page.textContent('main'), /This computer/)
  await check(page, 'passkeys-added')

  // Signed out and back in: the password, then the passkey instead of a code.
  await context.clearCookies()
  await page.goto(base + '/sign-in')
  await page.fill('#email', 'passkey@example.org')
  await page.fill('#password', PASSWORD)
  await submitForm(page)
  await page.click('text=Use a passkey instead')
  await page.waitForLoadState('load')
  assert.equal(await heading(page), 'Use your passkey')
  await check(page, 'passkey-sign-in')
  await submitForm(page)
  assert.equal(await heading(page), 'Your record', await page.content())
  await page.goto(base + '/account/passkeys')
  assert.match(await page.textContent('main'), /Last used on/)
  await context.close()
})

/** Adds a blood pressure reading, finds it on the chart and opens its entry, by keyboard. */
async function keyboardReading (page) {
  await tabTo(page, 'a.nhsuk-action-link')
  await pressEnterAndLoad(page)
  assert.equal(await heading(page), 'What do you want to add?')
  await tabTo(page, '#kind')
  await page.keyboard.press('Space')
  await tabTo(page, 'main button[type=submit]')
  await pressEnterAndLoad(page)
  await tabTo(page, '#kind')
  await page.keyboard.press('Space')
  await tabTo(page, 'main button[type=submit]')
  await pressEnterAndLoad(page)
  assert.equal(await heading(page), 'Add your blood pressure')
  await typeInto(page, '#systolic', '118')
  await typeInto(page, '#diastolic', '76')
  await tabTo(page, 'main button[type=submit]')
  await pressEnterAndLoad(page)
  assert.match(await page.textContent('main'), /118\/76 mmHg/)
  assert.match(await page.textContent('main'), /Reading saved/)
  // Back to the measurements, then the chart, then the entry from the chart's table.
  await tabTo(page, 'a.nhsuk-back-link')
  await pressEnterAndLoad(page)
  await tabTo(page, 'a[href="/record/measurements/blood-pressure"]')
  await pressEnterAndLoad(page)
  assert.match(await page.textContent('main'), /Your average blood pressure over this period was 118\/76 mmHg/)
  await tabTo(page, 'td a[href^="/record/entry/Observation/"]')
  await pressEnterAndLoad(page)
  assert.equal(await heading(page), 'Blood pressure')
  // Upload a document: the file chooser is the operating system's, so the test hands the
  // file to the focused input as a person picking it would; the rest is keys.
  await page.goto(base + '/record/add/document')
  await typeInto(page, '#title', 'Letter from the eye clinic')
  await tabTo(page, '#file')
  await page.setInputFiles('#file', { name: 'letter.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4\n%%EOF\n') })
  await tabTo(page, 'main button[type=submit]')
  await pressEnterAndLoad(page)
  assert.equal(await heading(page), 'Letter from the eye clinic')
  assert.ok(await page.locator('a[download]').count(), 'the document can be downloaded')
}

test('keyboard only: add a blood pressure reading, find it on the chart, open the entry', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  await keyboardJourney(page, 'reading@example.org')
  await keyboardReading(page)
  await context.close()
})

test('the same journeys work with JavaScript turned off', async () => {
  const context = await browser.newContext({ javaScriptEnabled: false })
  const page = await context.newPage()
  await keyboardJourney(page, 'nojs@example.org')
  await keyboardReading(page)
  // The password toggle is a script enhancement: without scripts it stays hidden.
  await page.goto(base + '/sign-in')
  assert.equal(await page.locator('.nhsuk-password-input__toggle').isVisible(), false)
  await context.close()
})

test('with JavaScript on, an import\'s page follows it to the end by itself', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  await keyboardJourney(page, 'import-js@example.org')
  // An Apple Health export big enough to take a few seconds.
  const rows = []
  const day = Date.UTC(2024, 0, 1)
  for (let i = 0; i < 100000; i++) {
    const t = new Date(day + i * 60000).toISOString().replace('T', ' ').slice(0, 19) + ' +0000'
    rows.push(`<Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" startDate="${t}" endDate="${t}" value="${60 + (i % 30)}"/>`)
  }
  const xml = `<?xml version="1.0"?>\n<HealthData locale="en_GB">\n${rows.join('\n')}\n</HealthData>\n`
  await page.goto(base + '/record/import')
  await page.setInputFiles('#file', { name: 'export.xml', mimeType: 'text/xml', buffer: Buffer.from(xml) })
  await submitForm(page)
  assert.equal(await heading(page), 'Adding your data')
  await check(page, 'import-going')
  const address = page.url()
  await page.waitForFunction(() => document.querySelector('h1')?.textContent === 'Your data has been added', null, { timeout: 120000 })
  assert.equal(page.url(), address, 'the page changed without a reload')
  assert.match(await page.textContent('main'), /New readings added: 100,000/)
  assert.ok(await page.evaluate(() => document.activeElement?.tagName === 'H1'), 'focus moves to the new heading')
  await context.close()
})

test('with JavaScript on, the password can be shown and the error summary takes focus', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(base + '/sign-in')
  await page.fill('#password', 'secret words here')
  await page.click('.nhsuk-password-input__toggle')
  assert.equal(await page.getAttribute('#password', 'type'), 'text')
  await submitForm(page)
  const focused = await page.evaluate(() => document.activeElement?.classList.contains('nhsuk-error-summary'))
  assert.ok(focused, 'the error summary has focus so screen readers announce it')
  await context.close()
})

test('keyboard only: a person deletes their account from the account page, and is signed out', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  await signUp(page, 'leaving@example.org', 'Lee Leaving')
  await page.goto(base + '/account')
  await tabTo(page, 'a[href="/account/delete"]')
  await Promise.all([page.waitForEvent('framenavigated'), page.keyboard.press('Enter')])
  assert.equal(await heading(page), 'Delete your account and record')
  await tabTo(page, 'main button[type=submit]')
  await Promise.all([page.waitForEvent('framenavigated'), page.keyboard.press('Enter')])
  await page.waitForLoadState('load')
  assert.equal(await heading(page), 'Your account has been deleted')
  await check(page, 'account-deleted')
  await page.goto(base + '/record')
  assert.equal(new URL(page.url()).pathname, '/sign-in')
  await context.close()
})

test('the demo person\'s lived-in record passes axe and fits 320 px', async () => {
  assert.equal(demoCodes.length, 10, 'serve --demo printed ten recovery codes')
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const page = await context.newPage()
  await page.goto(base + '/sign-in')
  await page.fill('#email', 'sam.demo@hale.example')
  await page.fill('#password', 'demo walrus lantern orchard')
  await submitForm(page)
  await page.goto(base + '/sign-in/recovery-code')
  await page.fill('#code', demoCodes[0])
  await submitForm(page)
  assert.equal(await heading(page), 'Your record')
  await check(page, 'demo-record')
  for (const path of ['conditions', 'medicines', 'allergies', 'immunisations', 'documents', 'care-plans', 'measurements']) {
    await page.goto(base + '/record/' + path)
    await check(page, 'demo-' + path)
  }
  await page.click('main table a')
  await check(page, 'demo-entry')
  await page.goto(base + '/record/summary')
  await check(page, 'demo-summary')
  await page.emulateMedia({ media: 'print' })
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-summary-print.png'), fullPage: true })
  assert.equal(await page.locator('header.nhsuk-header').isVisible(), false, 'printing leaves the navigation out')
  await page.emulateMedia({ media: 'screen' })
  await page.goto(base + '/record/measurements/blood-pressure?period=365')
  await check(page, 'demo-blood-pressure-year')
  await page.goto(base + '/record/wellbeing/steps?period=90')
  assert.match(await page.textContent('main'), /Your average over this period was [0-9]+ steps a day/)
  await check(page, 'demo-steps')
  await context.close()
})
