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
