//! One struct per template (askama checks them at compile time), and the pieces they share.

use askama::Template;

use super::Lang;

/// What the frame around every page needs.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    pub lang: Lang,
    /// The page's own title; the `<title>` adds the service name.
    pub title: String,
    /// Prefixes the title with "Error:" (the NHS.UK error summary pattern).
    pub has_errors: bool,
    /// Set when signed in: the CSRF token for the header's sign-out form.
    pub signed_in_csrf: Option<String>,
    /// Set while a signed-in person is looking at someone else's record under a grant.
    pub acting: bool,
}

impl Chrome {
    pub fn new(lang: Lang, title: String) -> Self {
        Self {
            lang,
            title,
            has_errors: false,
            signed_in_csrf: None,
            acting: false,
        }
    }

    pub fn signed_in(mut self, csrf: String) -> Self {
        self.signed_in_csrf = Some(csrf);
        self
    }
}

/// One entry of the error summary: the field it links to, and what to do.
#[derive(Debug, Clone)]
pub(crate) struct FormError {
    pub field: String,
    pub message: String,
}

/// A text, email or password input with its label, hint and error.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub id: &'static str,
    pub kind: &'static str,
    pub label: String,
    pub hint: Option<String>,
    pub error: Option<String>,
    pub value: String,
    pub autocomplete: &'static str,
    /// Extra classes, each with a leading space (` nhsuk-input--width-10`).
    pub classes: &'static str,
    /// A code: no spellcheck or auto-capitals.
    pub code: bool,
    /// Digits: a numeric keypad on phones.
    pub numeric: bool,
    /// For radios: (value, words).
    pub choices: Vec<(String, String)>,
}

impl Field {
    pub fn new(id: &'static str, kind: &'static str, label: String) -> Self {
        Self {
            id,
            kind,
            label,
            hint: None,
            error: None,
            value: String::new(),
            autocomplete: "",
            classes: "",
            code: false,
            numeric: false,
            choices: Vec::new(),
        }
    }

    pub fn hint(mut self, hint: String) -> Self {
        self.hint = Some(hint);
        self
    }

    pub fn autocomplete(mut self, a: &'static str) -> Self {
        self.autocomplete = a;
        self
    }

    pub fn value(mut self, v: &str) -> Self {
        self.value = v.to_owned();
        self
    }

    pub fn code(mut self, numeric: bool, classes: &'static str) -> Self {
        self.code = true;
        self.numeric = numeric;
        self.classes = classes;
        self
    }

    /// For checkboxes: whether `choice` is among the ticked (`value` holds them, comma-separated).
    pub fn is_checked(&self, choice: &str) -> bool {
        self.value.split(',').any(|v| v == choice)
    }

    /// The ids that describe the input: its hint and its error, if any.
    /// A date field's boxes: id, name, value (from `value`, `day/month/year`), width, label.
    pub fn date_parts(&self, lang: &Lang) -> Vec<(String, String, String, &'static str, String)> {
        let mut values = self.value.split('/').map(str::to_owned);
        [("day", "2"), ("month", "2"), ("year", "4")]
            .into_iter()
            .enumerate()
            .map(|(i, (part, width))| {
                let id = if i == 0 {
                    self.id.to_owned()
                } else {
                    format!("{}-{part}", self.id)
                };
                (
                    id,
                    format!("{}-{part}", self.id),
                    values.next().unwrap_or_default(),
                    width,
                    lang.t(&format!("date-{part}")),
                )
            })
            .collect()
    }

    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if self.hint.is_some() {
            ids.push(format!("{}-hint", self.id));
        }
        if self.error.is_some() {
            ids.push(format!("{}-error", self.id));
        }
        ids.join(" ")
    }
}

/// The start page.
#[derive(Template)]
#[template(path = "start.html")]
pub(crate) struct StartPage {
    pub chrome: Chrome,
}

/// A page with one form: sign-up, sign-in, codes, authenticator set-up.
#[derive(Template)]
#[template(path = "form.html")]
pub(crate) struct FormPage {
    pub chrome: Chrome,
    /// A back link: address and words.
    pub back: Option<(String, String)>,
    /// The form uploads a file (`multipart/form-data`).
    pub multipart: bool,
    pub errors: Vec<FormError>,
    pub heading: String,
    pub paragraphs: Vec<String>,
    pub qr_svg: Option<String>,
    /// A details element: summary, text, and a code to show.
    pub details: Option<(String, String, String)>,
    pub action: String,
    pub csrf: String,
    pub hidden: Vec<(&'static str, String)>,
    pub fields: Vec<Field>,
    pub submit: String,
    /// A passkey ceremony the form runs with JavaScript: `create` or `get`, and where its
    /// options come from.
    pub passkey: Option<(&'static str, &'static str)>,
    /// Links after the form: an optional lead-in, the address, the link text.
    pub links: Vec<(Option<String>, &'static str, String)>,
}

impl FormPage {
    pub fn new(chrome: Chrome, heading: String, action: impl Into<String>, csrf: String) -> Self {
        Self {
            chrome,
            back: None,
            multipart: false,
            errors: Vec::new(),
            heading,
            paragraphs: Vec::new(),
            qr_svg: None,
            details: None,
            action: action.into(),
            csrf,
            hidden: Vec::new(),
            fields: Vec::new(),
            submit: String::new(),
            links: Vec::new(),
            passkey: None,
        }
    }

    /// Marks a field wrong: its message inline and in the summary, and "Error:" in the title.
    pub fn error(&mut self, field: &str, message: String) {
        if let Some(f) = self.fields.iter_mut().find(|f| f.id == field) {
            f.error = Some(message.clone());
        }
        self.errors.push(FormError {
            field: field.to_owned(),
            message,
        });
        self.chrome.has_errors = true;
    }
}

/// A page that says one thing (check your email, link expired, errors).
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    pub chrome: Chrome,
    pub heading: String,
    pub paragraphs: Vec<String>,
    pub reference: Option<String>,
    pub links: Vec<(&'static str, String)>,
}

/// Recovery codes, shown once.
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub(crate) struct RecoveryCodesPage {
    pub chrome: Chrome,
    pub codes: Vec<String>,
}

/// One row of the sessions list.
#[derive(Debug, Clone)]
pub(crate) struct SessionRow {
    pub id: String,
    pub device: String,
    pub signed_in: String,
    pub last_used: String,
    pub current: bool,
}

/// Where the person is signed in.
#[derive(Template)]
#[template(path = "sessions.html")]
pub(crate) struct SessionsPage {
    pub chrome: Chrome,
    pub csrf: String,
    pub sessions: Vec<SessionRow>,
}
