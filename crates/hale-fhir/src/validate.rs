//! Validation of a resource against the official R4 StructureDefinitions.
//!
//! Checked: the resource type; that every element is defined (choice elements with a valid
//! type suffix); JSON shape (array or single, as the cardinality says); minimum
//! cardinality; primitive formats (FHIR R4 §2.24 regular expressions); required bindings on
//! `code` elements; contained and bundled resources, recursively; and the UK Core rule that
//! an NHS number identifier carries a valid check digit. Not checked: FHIRPath invariants
//! and profiles beyond the base definitions.

use std::fmt::Write as _;
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
    v.resource(resource, &mut String::with_capacity(128), 0);
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
    /// Its path in the definitions (`Observation.value[x]`, `Observation.code`).
    def_path: String,
    /// Its own definition: cardinality, content reference.
    card: &'a ElementDef,
    /// Where its types and binding come from (the referenced element, for a contentReference).
    shape: &'a ElementDef,
    /// The one type that applies.
    element_type: &'a str,
}

/// Whether `suffix` is `type_name` with its first letter in capitals (`Quantity` for
/// `Quantity`, `DateTime` for `dateTime`): the type suffix of a choice element.
fn is_type_suffix(suffix: &str, type_name: &str) -> bool {
    let (Some(s), Some(t)) = (suffix.chars().next(), type_name.chars().next()) else {
        return false;
    };
    s == t.to_ascii_uppercase() && suffix[s.len_utf8()..] == type_name[t.len_utf8()..]
}

/// Appends `.key` to a path for the length of `f`. Validation visits every element of every
/// resource written, so paths are built in one buffer, not a new string for each element;
/// an issue copies the path it names.
fn with_child<T>(path: &mut String, key: &str, f: impl FnOnce(&mut String) -> T) -> T {
    let len = path.len();
    path.push('.');
    path.push_str(key);
    let out = f(path);
    path.truncate(len);
    out
}

/// Appends `[i]` to a path for the length of `f`.
fn with_item<T>(path: &mut String, i: usize, f: impl FnOnce(&mut String) -> T) -> T {
    let len = path.len();
    // Writing to a String cannot fail.
    let _ = write!(path, "[{i}]");
    let out = f(path);
    path.truncate(len);
    out
}

impl<'a> Validator<'a> {
    fn issue(&mut self, code: IssueCode, path: &str, message: impl Into<String>) {
        // A badly broken resource can produce thousands of issues; the first hundred say enough.
        if self.issues.len() < 100 {
            self.issues.push(Issue::error(code, path, message));
        }
    }

    /// `at` is the display path of the resource itself ("" at the top).
    fn resource(&mut self, value: &Value, at: &mut String, depth: usize) {
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
        // At the top, paths start with the type's name.
        let top = at.is_empty();
        if top {
            at.push_str(rt);
        }
        if let Some(id) = obj.get("id")
            && !id
                .as_str()
                .is_some_and(|s| format_of("id").is_some_and(|r| r.is_match(s)))
        {
            with_child(at, "id", |at| {
                self.issue(
                    IssueCode::Value,
                    at,
                    "id must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'",
                )
            });
        }
        self.object(rt, rt, obj, at, depth + 1);
        if top {
            at.clear();
        }
    }

    fn object(
        &mut self,
        type_name: &str,
        def_path: &str,
        obj: &Map<String, Value>,
        at: &mut String,
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
            with_child(at, key, |at| {
                self.element(type_name, def_path, obj, key, value, at, depth)
            });
        }
        self.required_children(type_name, def_path, obj, at);
        if type_name == "Identifier"
            && obj.get("system").and_then(Value::as_str) == Some(nhs_number::SYSTEM)
            && !obj
                .get("value")
                .and_then(Value::as_str)
                .is_some_and(nhs_number::is_valid)
        {
            with_child(at, "value", |at| {
                self.issue(
                    IssueCode::Value,
                    at,
                    "NHS number fails the Modulus 11 check digit (UK Core)",
                )
            });
        }
    }

    /// One key of an object; `at` is already the key's path.
    #[allow(clippy::too_many_arguments)]
    fn element(
        &mut self,
        type_name: &str,
        def_path: &str,
        obj: &Map<String, Value>,
        key: &str,
        value: &Value,
        at: &mut String,
        depth: usize,
    ) {
        if let Some(base) = key.strip_prefix('_') {
            // The id/extension sibling of a primitive (FHIR R4 §2.6.2, JSON representation).
            if self.resolve(type_name, def_path, base).is_none() {
                self.issue(IssueCode::Structure, at, "unknown element");
            } else if !(value.is_object() || value.is_array()) {
                self.issue(IssueCode::Structure, at, "must be an object or array");
            }
            return;
        }
        let Some(resolved) = self.resolve(type_name, def_path, key) else {
            self.issue(IssueCode::Structure, at, "unknown element");
            return;
        };
        match (resolved.card.is_array(), value) {
            (true, Value::Array(items)) => {
                if items.is_empty() {
                    self.issue(IssueCode::Structure, at, "arrays must not be empty");
                }
                for (i, item) in items.iter().enumerate() {
                    if item.is_null() && obj.contains_key(&format!("_{key}")) {
                        continue; // a null placeholder paired with an extension
                    }
                    with_item(at, i, |at| {
                        self.value(type_name, &resolved, item, at, depth + 1)
                    });
                }
            }
            (true, _) => self.issue(IssueCode::Structure, at, "must be an array"),
            (false, Value::Array(_)) => {
                self.issue(IssueCode::Structure, at, "must not be an array")
            }
            (false, item) => self.value(type_name, &resolved, item, at, depth + 1),
        }
    }

    fn required_children(
        &mut self,
        type_name: &str,
        def_path: &str,
        obj: &Map<String, Value>,
        at: &mut String,
    ) {
        let missing: Vec<&str> = self
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
            .map(|(name, _)| name)
            .collect();
        for name in missing {
            with_child(at, name, |at| {
                self.issue(IssueCode::Required, at, "required element is missing")
            });
        }
    }

    /// Finds the definition of `key` under `def_path`, and the one type that applies
    /// (the suffix type for a choice element, or the only type). Borrowed from the
    /// definitions: validation walks every element, so nothing is copied here but the path.
    fn resolve(&self, type_name: &str, def_path: &str, key: &str) -> Option<Resolved<'a>> {
        let defs: &'a Definitions = self.defs;
        let mut path = String::with_capacity(def_path.len() + 1 + key.len());
        path.push_str(def_path);
        path.push('.');
        path.push_str(key);
        if let Some(card) = defs.element(type_name, &path) {
            // A contentReference element takes its shape from the element it names.
            let shape = card
                .content_ref
                .as_deref()
                .and_then(|r| defs.element(type_name, r))
                .unwrap_or(card);
            let element_type = shape.types.first().map_or("Element", String::as_str);
            return Some(Resolved {
                def_path: path,
                card,
                shape,
                element_type,
            });
        }
        for (name, def) in defs.children(type_name, def_path) {
            let Some(prefix) = name.strip_suffix("[x]") else {
                continue;
            };
            let Some(suffix) = key.strip_prefix(prefix) else {
                continue;
            };
            if let Some(t) = def.types.iter().find(|t| is_type_suffix(suffix, t)) {
                path.truncate(def_path.len() + 1);
                path.push_str(name);
                return Some(Resolved {
                    def_path: path,
                    card: def,
                    shape: def,
                    element_type: t,
                });
            }
        }
        None
    }

    fn value(
        &mut self,
        type_name: &str,
        resolved: &Resolved<'a>,
        value: &Value,
        at: &mut String,
        depth: usize,
    ) {
        let element_type = resolved.element_type;
        match element_type {
            "BackboneElement" | "Element" => match value.as_object() {
                Some(obj) => {
                    let path = resolved
                        .card
                        .content_ref
                        .as_deref()
                        .unwrap_or(&resolved.def_path);
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
        _ => match value.as_str() {
            None => Some(format!("must be a JSON string ({t})")),
            Some("") => Some("must not be an empty string".to_owned()),
            // FHIR R4 §2.24.0.1: no characters below U+0020 except tab, CR and LF.
            Some(s)
                if s.chars()
                    .any(|c| c < ' ' && !matches!(c, '\t' | '\r' | '\n')) =>
            {
                Some("must not contain control characters".to_owned())
            }
            Some(s) => format_of(t)
                .is_some_and(|r| !r.is_match(s))
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
