//! The words on every page, from Fluent message catalogues (`locales/*/hale.ftl`), so that
//! other languages can follow without touching a template.
//!
//! Besides British English there is a pseudo-locale, `en-XA`, chosen with
//! `Accept-Language: en-XA`: the same messages with every letter accented and lengthened. A
//! test renders every page in it and finds no plain English left, which proves that no
//! string is hard-coded in a template or handler.

use std::borrow::Cow;
use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

const EN_GB: &str = include_str!("../../locales/en-GB/hale.ftl");

/// A language to render a page in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// British English.
    EnGb,
    /// Accented, lengthened English for finding hard-coded strings.
    Pseudo,
}

fn pseudo(s: &str) -> Cow<'_, str> {
    fluent_pseudo::transform(s, false, true)
}

fn bundle(lang: Lang) -> &'static FluentBundle<FluentResource> {
    static EN: OnceLock<FluentBundle<FluentResource>> = OnceLock::new();
    static XA: OnceLock<FluentBundle<FluentResource>> = OnceLock::new();
    let (cell, tag) = match lang {
        Lang::EnGb => (&EN, "en-GB"),
        Lang::Pseudo => (&XA, "en-XA"),
    };
    cell.get_or_init(|| {
        let id: LanguageIdentifier = tag.parse().unwrap_or_default();
        let mut b = FluentBundle::new_concurrent(vec![id]);
        // Unicode isolation marks are for mixing directions in plain text; in HTML they
        // would only get in the way of copying and searching.
        b.set_use_isolating(false);
        if lang == Lang::Pseudo {
            b.set_transform(Some(pseudo));
        }
        // The catalogue is compiled in and checked by a test, so a syntax error cannot reach
        // a running server; if it somehow did, the message ids would show instead.
        match FluentResource::try_new(EN_GB.to_owned()) {
            Ok(res) | Err((res, _)) => {
                let _ = b.add_resource(res);
            }
        }
        b
    })
}

impl Lang {
    /// The language for an `Accept-Language` header: the pseudo-locale if asked for first,
    /// otherwise British English (the only catalogue so far).
    pub fn from_accept_language(header: Option<&str>) -> Self {
        let first = header.and_then(|h| h.split(',').next()).map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        if first.as_deref() == Some("en-xa") {
            Lang::Pseudo
        } else {
            Lang::EnGb
        }
    }

    /// The `lang` attribute for the page.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::EnGb => "en-GB",
            Lang::Pseudo => "en-XA",
        }
    }

    /// A message.
    pub fn t(self, id: &str) -> String {
        self.format(id, None)
    }

    /// A message, if the catalogue has one by that id (for codes that may or may not have
    /// words, such as a FHIR status).
    pub fn try_t(self, id: &str) -> Option<String> {
        bundle(self).has_message(id).then(|| self.t(id))
    }

    /// A message with one argument.
    pub fn t1(self, id: &str, name: &str, value: impl ToString) -> String {
        self.ta(id, &[(name, value.to_string())])
    }

    /// A message with arguments; values that are whole numbers are passed as numbers, so
    /// plural rules apply to them.
    pub fn ta(self, id: &str, values: &[(&str, String)]) -> String {
        let mut args = FluentArgs::new();
        for (name, value) in values {
            match value.parse::<i64>() {
                Ok(n) => args.set(*name, FluentValue::from(n)),
                Err(_) => args.set(*name, FluentValue::from(value.clone())),
            }
        }
        self.format(id, Some(&args))
    }

    fn format(self, id: &str, args: Option<&FluentArgs<'_>>) -> String {
        let b = bundle(self);
        let Some(pattern) = b.get_message(id).and_then(|m| m.value()) else {
            tracing::warn!(message = id, "missing message");
            return id.to_owned();
        };
        let mut errors = Vec::new();
        b.format_pattern(pattern, args, &mut errors).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_parses_and_every_message_has_a_value() {
        let res = FluentResource::try_new(EN_GB.to_owned());
        assert!(
            res.is_ok(),
            "hale.ftl has syntax errors: {:?}",
            res.err().map(|e| e.1)
        );
        assert_eq!(Lang::EnGb.t("sign-in-title"), "Sign in to Hale");
        assert_eq!(
            Lang::EnGb.t1("too-many-body", "minutes", 1),
            "For your security, you need to wait before trying again. Try again in 1 minute."
        );
    }

    #[test]
    fn the_pseudo_locale_changes_every_letter_it_shows() {
        let plain = Lang::EnGb.t("sign-in-title");
        let pseudo = Lang::Pseudo.t("sign-in-title");
        assert_ne!(plain, pseudo);
        assert!(!pseudo.contains("Sign"), "{pseudo}");
        assert_eq!(
            Lang::from_accept_language(Some("en-XA,en;q=0.5")),
            Lang::Pseudo
        );
        assert_eq!(Lang::from_accept_language(Some("en-GB")), Lang::EnGb);
        assert_eq!(Lang::from_accept_language(None), Lang::EnGb);
    }
}
