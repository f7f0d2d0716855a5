// Progressive enhancement only: every page works without this file. It marks the page as
// scripted (so nhsuk-frontend's enhanced styles apply) and starts the design system's
// components: show/hide password, error summary focus, skip link, header menu.
import { initAll } from '/assets/nhsuk/nhsuk-frontend.min.js'

document.body.classList.add('js-enabled', 'nhsuk-frontend-supported')
initAll()

// An import's page: while it runs, fetch the page again every two seconds and show the new
// progress in the live region; when it ends, show the finished page and move focus to its
// heading. Without this, the page says to refresh, and refreshing shows the same.
const progress = document.querySelector('[data-poll]')
if (progress) {
  const tick = async () => {
    let next
    try {
      const response = await fetch(window.location.href, { credentials: 'same-origin' })
      if (!response.ok) return
      next = new DOMParser().parseFromString(await response.text(), 'text/html')
    } catch {
      return
    }
    const still = next.querySelector('[data-poll]')
    if (still) {
      progress.innerHTML = still.innerHTML
      setTimeout(tick, 2000)
      return
    }
    const main = document.querySelector('main')
    const finished = next.querySelector('main')
    if (main && finished) {
      main.replaceWith(finished)
      document.title = next.title
      const heading = finished.querySelector('h1')
      if (heading) {
        heading.setAttribute('tabindex', '-1')
        heading.focus()
      }
    }
  }
  setTimeout(tick, 2000)
}

// Passkeys: a form marked data-passkey ("create" to add one, "get" to sign in with one)
// asks its data-options address for the WebAuthn options, has the browser make or use the
// passkey, and sends the result in the form's hidden fields. Without this (or if the person
// cancels), the form is sent without a passkey and the page says what happened.
const fromB64url = (text) => {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/')
  return Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0)).buffer
}
const toB64url = (buffer) =>
  btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')

async function passkey (form) {
  const response = await fetch(form.dataset.options, {
    method: 'POST',
    credentials: 'same-origin',
    body: new URLSearchParams(new FormData(form))
  })
  const { options, state } = await response.json()
  const publicKey = options.publicKey
  publicKey.challenge = fromB64url(publicKey.challenge)
  let credential
  if (form.dataset.passkey === 'create') {
    publicKey.user.id = fromB64url(publicKey.user.id)
    for (const c of publicKey.excludeCredentials || []) c.id = fromB64url(c.id)
    const made = await navigator.credentials.create({ publicKey })
    credential = {
      id: made.id,
      rawId: toB64url(made.rawId),
      type: made.type,
      extensions: made.getClientExtensionResults(),
      response: {
        attestationObject: toB64url(made.response.attestationObject),
        clientDataJSON: toB64url(made.response.clientDataJSON)
      }
    }
  } else {
    for (const c of publicKey.allowCredentials || []) c.id = fromB64url(c.id)
    const used = await navigator.credentials.get({ publicKey })
    credential = {
      id: used.id,
      rawId: toB64url(used.rawId),
      type: used.type,
      extensions: used.getClientExtensionResults(),
      response: {
        authenticatorData: toB64url(used.response.authenticatorData),
        clientDataJSON: toB64url(used.response.clientDataJSON),
        signature: toB64url(used.response.signature),
        userHandle: used.response.userHandle ? toB64url(used.response.userHandle) : null
      }
    }
  }
  form.elements.state.value = state
  form.elements.credential.value = JSON.stringify(credential)
}

for (const form of document.querySelectorAll('form[data-passkey]')) {
  form.addEventListener('submit', async (event) => {
    // Nothing to do without WebAuthn, or with a name still to type (the server says so).
    const name = form.elements.name
    if (form.elements.credential.value || !window.PublicKeyCredential || (name && !name.value.trim())) return
    event.preventDefault()
    try {
      await passkey(form)
    } catch {
      // Cancelled, or no passkey here: the server says so.
    }
    form.submit()
  })
}
