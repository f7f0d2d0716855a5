//! Validation of a resource against the official R4 StructureDefinitions.
//!
//! Checked: the resource type; that every element is defined (choice elements with a valid
//! type suffix); JSON shape (array or single, as the cardinality says); minimum
//! cardinality; primitive formats (FHIR R4 §2.24 regular expressions); required bindings on
//! `code` elements; contained and bundled resources, recursively; and the UK Core rule that
//! an NHS number identifier carries a valid check digit. Not checked: FHIRPath invariants
//! and profiles beyond the base definitions.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Value};

use crate::{Definitions, ElementDef, Issue, IssueCode, MAX_DEPTH, nhs_number};

/// Validates a resource; on failure returns every problem found, each with its path.
pub fn validate(defs: &Definitions, resource: &Value) -> Result<(), Vec<Issue>> {
    let mut v = Validator {
        defs,
        issues: Vec::new(),
    };
    v.resource(resource, "", 0);
    if v.issues.is_empty() {
        Ok(())
    } else {
        Err(v.issues)
    }
}

struct Validator<'a> {
    defs: &'a Definitions,
    issues: Vec<Issue>,
}

/// An element's definition as it applies to one JSON key.
struct Resolved<'a> {
    /// Its own definition: cardinality, content reference.
    card: &'a ElementDef,
    /// Where its types and binding come from (the referenced element, for a contentReference).
    shape: &'a ElementDef,
    /// The one type that applies.
    element_type: &'a str,
    /// Whether the key is a choice element with its type suffix (`valueQuantity`).
    choice: bool,
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

impl<'a> Validator<'a> {
    fn issue(&mut self, code: IssueCode, path: &str, message: impl Into<String>) {
        // A badly broken resource can produce thousands of issues; the first hundred say enough.
        if self.issues.len() < 100 {
            self.issues.push(Issue::error(code, path, message));
        }
    }

    /// `at` is the display path of the resource itself ("" at the top).
    fn resource(&mut self, value: &Value, at: &str, depth: usize) {
        let Some(obj) = value.as_object() else {
            self.issue(IssueCode::Structure, at, "a resource must be a JSON object");
            return;
        };
        let Some(rt) = obj.get("resourceType").and_then(Value::as_str) else {
            self.issue(IssueCode::Required, at, "resourceType is missing");
            return;
        };
        if !self.defs.is_resource_type(rt) {
            self.issue(
                IssueCode::NotSupported,
                at,
                format!("'{rt}' is not an R4 resource type"),
            );
            return;
        }
        let display = if at.is_empty() {
            rt.to_owned()
        } else {
            at.to_owned()
        };
        if let Some(id) = obj.get("id")
            && !id
                .as_str()
                .is_some_and(|s| format_of("id").is_some_and(|r| r.is_match(s)))
        {
            self.issue(
                IssueCode::Value,
                &format!("{display}.id"),
                "id must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'",
            );
        }
        self.object(rt, rt, obj, &display, depth + 1);
    }

    fn object(
        &mut self,
        type_name: &str,
        def_path: &str,
        obj: &Map<String, Value>,
        at: &str,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            self.issue(IssueCode::Structure, at, "nested too deeply");
            return;
        }
        if obj.is_empty() {
            self.issue(
                IssueCode::Structure,
                at,
                "an element must not be empty (FHIR forbids {})",
            );
        }
        for (key, value) in obj {
            if key == "resourceType"
                && def_path == type_name
                && self.defs.is_resource_type(type_name)
            {
                continue;
            }
            let child_at = format!("{at}.{key}");
            if let Some(base) = key.strip_prefix('_') {
                // The id/extension sibling of a primitive (FHIR R4 §2.6.2, JSON representation).
                if self.resolve(type_name, def_path, base).is_none() {
                    self.issue(IssueCode::Structure, &child_at, "unknown element");
                } else if !(value.is_object() || value.is_array()) {
                    self.issue(
                        IssueCode::Structure,
                        &child_at,
                        "must be an object or array",
                    );
                }
                continue;
            }
            let Some(resolved) = self.resolve(type_name, def_path, key) else {
                self.issue(IssueCode::Structure, &child_at, "unknown element");
                continue;
            };
            let child_def_path = if resolved.choice {
                let suffix = capitalise(resolved.element_type);
                format!("{def_path}.{}[x]", key.strip_suffix(&suffix).unwrap_or(key))
            } else {
                format!("{def_path}.{key}")
            };
            match (resolved.card.is_array(), value) {
                (true, Value::Array(items)) => {
                    if items.is_empty() {
                        self.issue(IssueCode::Structure, &child_at, "arrays must not be empty");
                    }
                    for (i, item) in items.iter().enumerate() {
                        if item.is_null() && obj.contains_key(&format!("_{key}")) {
                            continue; // a null placeholder paired with an extension
                        }
                        let item_at = format!("{child_at}[{i}]");
                        self.value(
                            type_name,
                            &child_def_path,
                            &resolved,
                            item,
                            &item_at,
                            depth + 1,
                        );
                    }
                }
                (true, _) => self.issue(IssueCode::Structure, &child_at, "must be an array"),
                (false, Value::Array(_)) => {
                    self.issue(IssueCode::Structure, &child_at, "must not be an array")
                }
                (false, item) => self.value(
                    type_name,
                    &child_def_path,
                    &resolved,
                    item,
                    &child_at,
                    depth + 1,
                ),
            }
        }
        self.required_children(type_name, def_path, obj, at);
        if type_name == "Identifier"
            && obj.get("system").and_then(Value::as_str) == Some(nhs_number::SYSTEM)
            && !obj
                .get("value")
                .and_then(Value::as_str)
                .is_some_and(nhs_number::is_valid)
        {
            self.issue(
                IssueCode::Value,
                &format!("{at}.value"),
                "NHS number fails the Modulus 11 check digit (UK Core)",
            );
        }
    }

    fn required_children(
        &mut self,
        type_name: &str,
        def_path: &str,
        obj: &Map<String, Value>,
        at: &str,
    ) {
        let missing: Vec<String> = self
            .defs
            .children(type_name, def_path)
            .filter(|(_, def)| def.min > 0)
            .filter(|(name, _)| {
                if let Some(prefix) = name.strip_suffix("[x]") {
                    !obj.keys().any(|k| {
                        k.strip_prefix(prefix)
                            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
                    })
                } else {
                    !obj.contains_key(*name) && !obj.contains_key(&format!("_{name}"))
                }
            })
            .map(|(name, _)| name.to_owned())
            .collect();
        for name in missing {
            self.issue(
                IssueCode::Required,
                &format!("{at}.{name}"),
                "required element is missing",
            );
        }
    }

    /// Finds the definition of `key` under `def_path`, and the one type that applies
    /// (the suffix type for a choice element, or the only type). Borrowed from the
    /// definitions: validation walks every element, so nothing is copied here.
    fn resolve(&self, type_name: &str, def_path: &str, key: &str) -> Option<Resolved<'a>> {
        let defs: &'a Definitions = self.defs;
        if let Some(card) = defs.element(type_name, &format!("{def_path}.{key}")) {
            // A contentReference element takes its shape from the element it names.
            let shape = card
                .content_ref
                .as_deref()
                .and_then(|r| defs.element(type_name, r))
                .unwrap_or(card);
            let element_type = shape.types.first().map_or("Element", String::as_str);
            return Some(Resolved {
                card,
                shape,
                element_type,
                choice: false,
            });
        }
        for (name, def) in defs.children(type_name, def_path) {
            let Some(prefix) = name.strip_suffix("[x]") else {
                continue;
            };
            let Some(suffix) = key.strip_prefix(prefix) else {
                continue;
            };
            if let Some(t) = def.types.iter().find(|t| capitalise(t) == suffix) {
                return Some(Resolved {
                    card: def,
                    shape: def,
                    element_type: t,
                    choice: true,
                });
            }
        }
        None
    }

    fn value(
        &mut self,
        type_name: &str,
        def_path: &str,
        resolved: &Resolved<'a>,
        value: &Value,
        at: &str,
        depth: usize,
    ) {
        let element_type = resolved.element_type;
        match element_type {
            "BackboneElement" | "Element" => match value.as_object() {
                Some(obj) => {
                    let path = resolved.card.content_ref.as_deref().unwrap_or(def_path);
                    self.object(type_name, path, obj, at, depth)
                }
                None => self.issue(IssueCode::Structure, at, "must be an object"),
            },
            "Resource" => self.resource(value, at, depth),
            t if self.defs.is_primitive(t) => {
                if let Some(message) = primitive_problem(t, value) {
                    self.issue(IssueCode::Value, at, message);
                } else if let (Some(vs), Some(code)) = (&resolved.shape.value_set, value.as_str())
                    && let Some(codes) = self.defs.value_set(vs)
                    && !codes.contains(code)
                {
                    self.issue(
                        IssueCode::CodeInvalid,
                        at,
                        format!("code is not in the required value set {vs}"),
                    );
                }
            }
            t if self.defs.is_concrete_type(t) => match value.as_object() {
                Some(obj) => self.object(t, t, obj, at, depth),
                None => self.issue(IssueCode::Structure, at, format!("must be a {t} object")),
            },
            t => self.issue(
                IssueCode::NotSupported,
                at,
                format!("type {t} is not supported"),
            ),
        }
    }
}

#[allow(clippy::panic)]
fn never() -> Regex {
    panic!("a built-in regular expression failed to compile")
}

fn compiled(pattern: &'static str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|_| never())
}

/// The format regular expressions of FHIR R4's primitive types (§2.24.0.1), anchored.
fn format_of(t: &str) -> Option<&'static Regex> {
    macro_rules! cached {
        ($p:expr) => {{
            static R: OnceLock<Regex> = OnceLock::new();
            Some(R.get_or_init(|| compiled($p)))
        }};
    }
    match t {
        "date" => cached!(
            r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$"
        ),
        "dateTime" => cached!(
            r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$"
        ),
        "instant" => cached!(
            r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$"
        ),
        "time" => cached!(r"^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?$"),
        "code" => cached!(r"^[^\s]+( [^\s]+)*$"),
        "id" => cached!(r"^[A-Za-z0-9\-\.]{1,64}$"),
        "oid" => cached!(r"^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$"),
        "uuid" => {
            cached!(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        }
        "base64Binary" => cached!(r"^(\s*([0-9a-zA-Z\+/=]){4}\s*)+$"),
        "uri" | "url" | "canonical" => cached!(r"^\S*$"),
        _ => None,
    }
}

/// What is wrong with a primitive value, if anything. Never echoes the value.
fn primitive_problem(t: &str, value: &Value) -> Option<String> {
    let expect_string = |v: &Value| -> Result<String, String> {
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("must be a JSON string ({t})"))
    };
    match t {
        "boolean" => (!value.is_boolean()).then(|| "must be true or false".to_owned()),
        "decimal" => (!value.is_number()).then(|| "must be a JSON number (decimal)".to_owned()),
        "integer" | "unsignedInt" | "positiveInt" => {
            let Some(n) = value.as_i64() else {
                return Some(format!("must be a whole JSON number ({t})"));
            };
            let ok = match t {
                "integer" => i32::try_from(n).is_ok(),
                "unsignedInt" => (0..=i64::from(i32::MAX)).contains(&n),
                _ => (1..=i64::from(i32::MAX)).contains(&n),
            };
            (!ok).then(|| format!("out of range for {t}"))
        }
        _ => match expect_string(value) {
            Err(e) => Some(e),
            Ok(s) if s.is_empty() => Some("must not be an empty string".to_owned()),
            // FHIR R4 §2.24.0.1: no characters below U+0020 except tab, CR and LF.
            Ok(s)
                if s.chars()
                    .any(|c| c < ' ' && !matches!(c, '\t' | '\r' | '\n')) =>
            {
                Some("must not contain control characters".to_owned())
            }
            Ok(s) => format_of(t)
                .is_some_and(|r| !r.is_match(&s))
                .then(|| format!("is not a valid {t}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Vec<(String, IssueCode)> {
        match validate(Definitions::r4(), &v) {
            Ok(()) => Vec::new(),
            Err(issues) => issues.into_iter().map(|i| (i.path, i.code)).collect(),
        }
    }

    #[test]
    fn a_minimal_valid_observation_passes() {
        let v = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-03-01T10:00:00+00:00",
            "valueQuantity": {"value": 72.40, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}});
        assert_eq!(check(v), vec![]);
    }

    #[test]
    fn unknown_elements_and_wrong_choice_types_are_named() {
        let v = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "colour": "red", "valueBanana": 1});
        let issues = check(v);
        assert!(issues.contains(&("Observation.colour".into(), IssueCode::Structure)));
        assert!(issues.contains(&("Observation.valueBanana".into(), IssueCode::Structure)));
    }

    #[test]
    fn missing_required_elements_and_bad_codes_are_named() {
        let issues = check(json!({"resourceType": "Observation", "status": "nearly"}));
        assert!(issues.contains(&("Observation.code".into(), IssueCode::Required)));
        assert!(issues.contains(&("Observation.status".into(), IssueCode::CodeInvalid)));
    }

    #[test]
    fn primitive_formats_and_array_shapes_are_checked() {
        let issues = check(json!({"resourceType": "Patient", "birthDate": "1970-13-01",
            "name": {"family": "X"}, "active": "yes"}));
        assert!(issues.contains(&("Patient.birthDate".into(), IssueCode::Value)));
        assert!(issues.contains(&("Patient.name".into(), IssueCode::Structure)));
        assert!(issues.contains(&("Patient.active".into(), IssueCode::Value)));
    }

    #[test]
    fn nhs_numbers_must_pass_the_check_digit() {
        let good = json!({"resourceType": "Patient", "identifier": [
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}]});
        assert_eq!(check(good), vec![]);
        let bad = json!({"resourceType": "Patient", "identifier": [
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765918"}]});
        assert_eq!(
            check(bad),
            vec![("Patient.identifier[0].value".into(), IssueCode::Value)]
        );
    }

    #[test]
    fn bundled_and_contained_resources_are_validated_too() {
        let v = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Observation", "status": "final"}}]});
        assert_eq!(
            check(v),
            vec![("Bundle.entry[0].resource.code".into(), IssueCode::Required)]
        );
    }

    #[test]
    fn recursive_backbone_elements_follow_content_references() {
        let v = json!({"resourceType": "Questionnaire", "status": "active", "item": [
            {"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "string", "bogus": 1}]}]});
        assert_eq!(
            check(v),
            vec![(
                "Questionnaire.item[0].item[0].bogus".into(),
                IssueCode::Structure
            )]
        );
    }
}
