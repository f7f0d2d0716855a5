//! Search-index values of a resource, taken from the official SearchParameter paths.
//!
//! Written in the same transaction as the resource, so a search never sees a resource
//! without its index or the reverse.

use serde_json::Value;

use crate::date::{DateRange, parse_range};
use crate::{Definitions, SearchParamType, SearchPath};

/// One value of one search parameter of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// The parameter's code (`code`, `subject`); `name:identifier` for logical references.
    pub param: String,
    /// The value, typed.
    pub value: IndexValue,
}

/// An indexed value. Absent parts are empty strings, so the SQL stays simple.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// A code or identifier; `text` is the display or CodeableConcept text, lower-cased.
    Token {
        /// Code system or identifier system ("" if none).
        system: String,
        /// The code or identifier value ("" for a text-only entry).
        code: String,
        /// Lower-cased text for `:text` searches.
        text: String,
    },
    /// Text: `norm` is lower-cased for the default and `:contains` searches.
    String {
        /// Lower-cased.
        norm: String,
        /// As written, for `:exact`.
        exact: String,
    },
    /// A date, period or instant as a range.
    Date(DateRange),
    /// A reference; local ones (`Type/id`) are split.
    Reference {
        /// The target's type ("" if not a local reference).
        target_type: String,
        /// The target's id ("" if not a local reference).
        target_id: String,
        /// The reference as written (for absolute and canonical references).
        url: String,
    },
    /// A value with a unit.
    Quantity {
        /// The unit system (e.g. UCUM).
        system: String,
        /// The unit code (falls back to the unit text).
        code: String,
        /// The value.
        value: f64,
    },
    /// A number.
    Number(f64),
    /// A URI.
    Uri(String),
}

/// Every index entry of `resource` (whose type is `resource_type`).
pub fn extract(defs: &Definitions, resource_type: &str, resource: &Value) -> Vec<IndexEntry> {
    let mut out = Vec::new();
    for param in defs
        .search_params(resource_type)
        .filter(|p| p.served_by.is_empty())
    {
        for path in &param.paths {
            for node in select(resource, path) {
                to_entries(&param.name, param.kind, node, &mut out);
            }
        }
    }
    out
}

/// The nodes a reduced FHIRPath selects.
pub fn select<'a>(resource: &'a Value, path: &SearchPath) -> Vec<&'a Value> {
    let mut nodes = vec![resource];
    for step in &path.steps {
        let mut next = Vec::new();
        for node in nodes {
            let Some(obj) = node.as_object() else {
                continue;
            };
            let mut push = |v: &'a Value| match v {
                Value::Array(items) => next.extend(items.iter()),
                v => next.push(v),
            };
            match obj.get(&step.name) {
                Some(v) => push(v),
                // A choice element named without its type (`Observation.effective`).
                None => {
                    for (k, v) in obj {
                        if k.strip_prefix(step.name.as_str())
                            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
                        {
                            push(v);
                        }
                    }
                }
            }
        }
        if let Some((field, want)) = &step.filter {
            next.retain(|n| n.get(field).and_then(Value::as_str) == Some(want.as_str()));
        }
        nodes = next;
    }
    if let Some(t) = &path.ref_type {
        nodes.retain(|n| {
            n.get("type").and_then(Value::as_str) == Some(t.as_str())
                || n.get("reference")
                    .and_then(Value::as_str)
                    .and_then(local_reference)
                    .is_some_and(|(rt, _)| rt == t)
        });
    }
    nodes
}

/// Splits a local reference `Type/id` (or `.../Type/id/_history/n`) into its parts.
pub fn local_reference(reference: &str) -> Option<(&str, &str)> {
    let trimmed = match reference.find("/_history/") {
        Some(at) => &reference[..at],
        None => reference,
    };
    let mut parts = trimmed.rsplitn(3, '/');
    let id = parts.next()?;
    let rt = parts.next()?;
    let prefix = parts.next();
    let plausible_type = rt.starts_with(|c: char| c.is_ascii_uppercase())
        && rt.bytes().all(|b| b.is_ascii_alphabetic());
    // An absolute URL is only local when it names no other server; callers treat absolute
    // references as opaque, so only bare `Type/id` counts here.
    (prefix.is_none() && plausible_type && !id.is_empty()).then_some((rt, id))
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or("").to_owned()
}

fn lower(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or("").to_lowercase()
}

fn push_string(param: &str, s: &str, out: &mut Vec<IndexEntry>) {
    if !s.is_empty() {
        out.push(IndexEntry {
            param: param.to_owned(),
            value: IndexValue::String {
                norm: s.to_lowercase(),
                exact: s.to_owned(),
            },
        });
    }
}

fn to_entries(param: &str, kind: SearchParamType, node: &Value, out: &mut Vec<IndexEntry>) {
    let mut token = |system: String, code: String, text: String| {
        out.push(IndexEntry {
            param: param.to_owned(),
            value: IndexValue::Token { system, code, text },
        })
    };
    match kind {
        SearchParamType::Token => match node {
            Value::String(s) => token(String::new(), s.clone(), String::new()),
            Value::Bool(b) => token(String::new(), b.to_string(), String::new()),
            Value::Object(o) => {
                if let Some(codings) = o.get("coding").and_then(Value::as_array) {
                    // CodeableConcept: one entry per coding, plus its text where no coding's
                    // display already carries it (`:text` reads the text of every entry).
                    let concept_text = lower(o.get("text"));
                    let mut text_carried = false;
                    for c in codings {
                        let display = lower(c.get("display"));
                        text_carried |= display == concept_text;
                        token(text(c.get("system")), text(c.get("code")), display);
                    }
                    if o.contains_key("text") && !text_carried {
                        token(String::new(), String::new(), concept_text);
                    }
                } else if o.contains_key("code")
                    || o.contains_key("system") && !o.contains_key("value")
                {
                    token(
                        text(o.get("system")),
                        text(o.get("code")),
                        lower(o.get("display")),
                    );
                } else if o.contains_key("value") {
                    // Identifier or ContactPoint.
                    let type_text = o
                        .get("type")
                        .map(|t| lower(t.get("text")))
                        .unwrap_or_default();
                    token(text(o.get("system")), text(o.get("value")), type_text);
                } else if o.contains_key("text") {
                    token(String::new(), String::new(), lower(o.get("text")));
                }
            }
            _ => {}
        },
        SearchParamType::String => match node {
            Value::String(s) => push_string(param, s, out),
            Value::Object(o) => {
                // HumanName and Address: every part is searchable (FHIR R4 §3.1.1.4.7).
                for key in [
                    "text",
                    "family",
                    "given",
                    "prefix",
                    "suffix",
                    "line",
                    "city",
                    "district",
                    "state",
                    "postalCode",
                    "country",
                ] {
                    match o.get(key) {
                        Some(Value::String(s)) => push_string(param, s, out),
                        Some(Value::Array(items)) => {
                            for s in items.iter().filter_map(Value::as_str) {
                                push_string(param, s, out)
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        },
        SearchParamType::Date => {
            let range = match node {
                Value::String(s) => parse_range(s),
                Value::Object(o) if o.contains_key("start") || o.contains_key("end") => {
                    let lo = o.get("start").and_then(Value::as_str).and_then(parse_range);
                    let hi = o.get("end").and_then(Value::as_str).and_then(parse_range);
                    Some(DateRange {
                        lo: lo.map_or(DateRange::ALL.lo, |r| r.lo),
                        hi: hi.map_or(DateRange::ALL.hi, |r| r.hi),
                    })
                }
                Value::Object(o) => {
                    // Timing: the span of its events.
                    let events: Vec<DateRange> = o
                        .get("event")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .filter_map(parse_range)
                        .collect();
                    let lo = events.iter().map(|r| r.lo).min();
                    let hi = events.iter().map(|r| r.hi).max();
                    lo.zip(hi).map(|(lo, hi)| DateRange { lo, hi })
                }
                _ => None,
            };
            if let Some(r) = range {
                out.push(IndexEntry {
                    param: param.to_owned(),
                    value: IndexValue::Date(r),
                });
            }
        }
        SearchParamType::Reference => match node {
            Value::String(url) => out.push(IndexEntry {
                param: param.to_owned(),
                value: IndexValue::Reference {
                    target_type: String::new(),
                    target_id: String::new(),
                    url: url.clone(),
                },
            }),
            Value::Object(o) => {
                if let Some(r) = o.get("reference").and_then(Value::as_str) {
                    let (target_type, target_id) = local_reference(r)
                        .map(|(t, i)| (t.to_owned(), i.to_owned()))
                        .unwrap_or_default();
                    out.push(IndexEntry {
                        param: param.to_owned(),
                        value: IndexValue::Reference {
                            target_type,
                            target_id,
                            url: r.to_owned(),
                        },
                    });
                }
                if let Some(ident) = o.get("identifier") {
                    out.push(IndexEntry {
                        param: format!("{param}:identifier"),
                        value: IndexValue::Token {
                            system: text(ident.get("system")),
                            code: text(ident.get("value")),
                            text: String::new(),
                        },
                    });
                }
            }
            _ => {}
        },
        SearchParamType::Quantity => {
            if let Some(value) = node.get("value").and_then(Value::as_f64) {
                let code = match node.get("code") {
                    Some(c) => text(Some(c)),
                    None => text(node.get("unit")).max(text(node.get("currency"))),
                };
                out.push(IndexEntry {
                    param: param.to_owned(),
                    value: IndexValue::Quantity {
                        system: text(node.get("system")),
                        code,
                        value,
                    },
                });
            }
        }
        SearchParamType::Number => {
            if let Some(v) = node.as_f64() {
                out.push(IndexEntry {
                    param: param.to_owned(),
                    value: IndexValue::Number(v),
                });
            }
        }
        SearchParamType::Uri => {
            if let Some(s) = node.as_str() {
                out.push(IndexEntry {
                    param: param.to_owned(),
                    value: IndexValue::Uri(s.to_owned()),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entries(v: Value) -> Vec<IndexEntry> {
        let rt = v["resourceType"].as_str().unwrap().to_owned();
        extract(Definitions::r4(), &rt, &v)
    }

    #[test]
    fn an_observation_is_indexed_by_code_subject_date_and_value() {
        let e = entries(json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-03-01",
            "valueQuantity": {"value": 61, "system": "http://unitsofmeasure.org", "code": "/min"}}));
        let find = |p: &str| {
            e.iter()
                .filter(|x| x.param == p)
                .map(|x| x.value.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            find("code"),
            vec![IndexValue::Token {
                system: "http://loinc.org".into(),
                code: "8867-4".into(),
                text: "heart rate".into()
            }]
        );
        assert_eq!(
            find("patient"),
            vec![IndexValue::Reference {
                target_type: "Patient".into(),
                target_id: "p1".into(),
                url: "Patient/p1".into()
            }]
        );
        assert_eq!(
            find("date"),
            vec![IndexValue::Date(parse_range("2024-03-01").unwrap())]
        );
        assert_eq!(
            find("value-quantity"),
            vec![IndexValue::Quantity {
                system: "http://unitsofmeasure.org".into(),
                code: "/min".into(),
                value: 61.0
            }]
        );
    }

    #[test]
    fn a_combined_parameter_stores_no_rows_of_its_own() {
        let e = entries(json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]}));
        let params: Vec<&str> = e.iter().map(|x| x.param.as_str()).collect();
        assert!(params.contains(&"code") && params.contains(&"component-code"));
        assert!(params.contains(&"component-value-quantity"));
        assert!(
            !params.iter().any(|p| p.starts_with("combo-")),
            "{params:?}"
        );
    }

    #[test]
    fn a_concept_text_gets_its_own_entry_only_when_no_display_carries_it() {
        let codes = |concept: Value| {
            entries(json!({"resourceType": "Observation", "status": "final", "code": concept}))
                .into_iter()
                .filter(|x| x.param == "code")
                .map(|x| x.value)
                .collect::<Vec<_>>()
        };
        let token = |system: &str, code: &str, text: &str| IndexValue::Token {
            system: system.into(),
            code: code.into(),
            text: text.into(),
        };
        let loinc = "http://loinc.org";
        assert_eq!(
            codes(
                json!({"coding": [{"system": loinc, "code": "8302-2", "display": "Body Height"}],
                "text": "Body height"})
            ),
            vec![token(loinc, "8302-2", "body height")]
        );
        assert_eq!(
            codes(
                json!({"coding": [{"system": loinc, "code": "8302-2", "display": "Body Height"}],
                "text": "How tall"})
            ),
            vec![
                token(loinc, "8302-2", "body height"),
                token("", "", "how tall")
            ]
        );
    }

    #[test]
    fn names_are_indexed_part_by_part() {
        let e = entries(json!({"resourceType": "Patient",
            "name": [{"family": "Ó Briain", "given": ["Aoife", "M"]}]}));
        let names: Vec<_> = e.iter().filter(|x| x.param == "name").collect();
        assert_eq!(names.len(), 3);
        assert!(e.iter().any(|x| x.param == "family"
            && x.value
                == IndexValue::String {
                    norm: "ó briain".into(),
                    exact: "Ó Briain".into()
                }));
    }

    #[test]
    fn local_references_are_split_and_others_kept_whole() {
        assert_eq!(local_reference("Patient/123"), Some(("Patient", "123")));
        assert_eq!(
            local_reference("Patient/123/_history/2"),
            Some(("Patient", "123"))
        );
        assert_eq!(
            local_reference("https://other.example/fhir/Patient/123"),
            None
        );
        assert_eq!(local_reference("urn:uuid:1234"), None);
    }
}
