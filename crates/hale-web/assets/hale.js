// Progressive enhancement only: every page works without this file. It marks the page as
// scripted (so nhsuk-frontend's enhanced styles apply) and starts the design system's
// components: show/hide password, error summary focus, skip link, header menu.
import { initAll } from '/assets/nhsuk/nhsuk-frontend.min.js'

document.body.classList.add('js-enabled', 'nhsuk-frontend-supported')
initAll()
